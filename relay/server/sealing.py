"""Sealing a no-JavaScript submission on the server: tar -> pad -> age -> blob.

Everything here is blocking (CPU and disk) and runs in a worker thread. The
plaintext exists only in memory: the message as text, small attachments as
bytes, larger ones read back chunk by chunk from their ``EphemeralSpool``
(encrypted on disk under a key held in memory), through the tar writer,
straight into the age encryptor, whose ciphertext goes to the store's temporary blob file. Only
``commit()`` makes the submission exist; any failure before it leaves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from relay.container import SubmissionArchive
from relay.conversation.codename import Codename
from relay.crypto.encrypt import Encryptor
from relay.crypto.recipients import Recipient
from relay.store import SubmissionRecord, SubmissionStore

SEALED_BY_SERVER = "server"


class AttachmentBody(Protocol):
    """An attachment's bytes, held until sealing: its size, then its data in order."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


class InMemoryBody:
    """A small attachment kept in memory, as the message is."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def chunks(self) -> Iterator[bytes]:
        yield self._data


@dataclass
class ReceivedAttachment:
    """One attachment as received: the name the browser sent, and its bytes
    (in memory when small, else in an ``EphemeralSpool``)."""

    name: str
    body: AttachmentBody


@dataclass
class ReceivedSubmission:
    """A parsed no-JS form, not yet sealed."""

    language: str
    message: str = ""
    attachments: list[ReceivedAttachment] = field(default_factory=list)
    codename: Codename | None = field(default=None, repr=False)
    """The codename typed or kept in the form, until it is turned into ``conversation``."""
    conversation: dict[str, object] | None = field(default=None, repr=False)
    """``codename_fields()`` for a tip that opens or continues a conversation."""

    @property
    def is_empty(self) -> bool:
        """No text worth storing and no file."""
        return not self.message.strip() and not self.attachments


def seal_submission(
    store: SubmissionStore,
    recipients: Sequence[Recipient],
    submission: ReceivedSubmission,
) -> SubmissionRecord:
    """Encrypt ``submission`` to every recipient and store it (``sealed_by: server``;
    with its conversation fields in ``submission.json`` when it has them)."""
    if not recipients:
        raise ValueError("there is no reviewer to encrypt to")
    archive = SubmissionArchive(
        language=submission.language,
        sealed_by=SEALED_BY_SERVER,
        conversation=submission.conversation,
    )
    encryptor = Encryptor(recipients)
    with store.blob_writer() as blob:

        def put(plaintext: bytes) -> None:
            ciphertext = encryptor.update(plaintext)
            if ciphertext:
                blob.write(ciphertext)

        blob.write(encryptor.start())
        put(archive.message(submission.message))
        for attachment in submission.attachments:
            put(archive.file_header(attachment.name, attachment.body.size))
            for chunk in attachment.body.chunks():
                put(archive.file_data(chunk))
            put(archive.file_end())
        for chunk in archive.finish():
            put(chunk)
        blob.write(encryptor.finish())
        return blob.commit(SEALED_BY_SERVER)
