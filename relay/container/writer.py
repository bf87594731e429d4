"""Building a submission archive as a stream, in constant memory.

The archive, byte for byte (every header as described in ``tarformat``):

    message.txt              header, UTF-8 text, zeros to the next 512-byte block
    files/<name>             for each attachment, in order: [pax header,] header,
                             data, zeros to the next block
    submission.json          header, JSON object, zeros to the next block
    end of archive           two zero blocks
    Padmé padding            zeros up to padme_length(length so far)

A pax header precedes an entry exactly when its path is not ASCII or is longer
than 100 bytes (record ``path``; the ustar name field then holds an ASCII
stand-in), or its size needs more than 11 octal digits (record ``size``,
8 GiB and up; written after ``path``). Attachment names are sanitised and made
unique first (``relay.container.names``). Entries have
mode 0644, uid/gid 0, no owner names and mtime 0. ``submission.json`` is
``{"day": "YYYY-MM-DD", "format_version": 1, "language": ..., "sealed_by": ...}``
(UTC day, nothing finer), indented by 2 spaces, keys sorted, then spaces up to
``META_PADDED_BYTES`` - 1 and a newline (``meta_json``); a tip that opens or
continues a conversation also carries ``"conversation"``, the object of
``ReplyKeys.to_fields()`` (browser) or ``codename_fields()`` (no JavaScript)
(docs/conversations.md section 4). Since ``submission.json`` always has the same
length, a one-off tip and a conversation tip of the same message and files are
archives of the same length, before and after padding.

Each method returns the bytes to append to the output; the caller streams them
on (into the age encryptor). Attachment sizes must be known before their data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime

from relay.container import tarformat
from relay.container.names import NameAllocator
from relay.crypto.padding import padme_length
from relay.errors import ContainerError

FORMAT_VERSION = 1
MESSAGE_PATH = "message.txt"
FILES_DIR = "files/"
META_PATH = "submission.json"
SEALED_BY_VALUES = ("server", "browser")
CONVERSATION_KEY = "conversation"
META_PADDED_BYTES = 1024
"""The length of every ``submission.json`` written (two tar blocks, no tar padding):
its JSON, spaces, and a newline. The largest object written (a 44-character
language tag and the browser's conversation fields) is about 580 bytes."""

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PADDING_CHUNK = bytes(64 * 1024)


def submission_meta(
    language: str,
    sealed_by: str,
    day: date | str | None,
    conversation: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The validated contents of ``submission.json``; ``day`` defaults to today (UTC).

    ``conversation`` is ``ReplyKeys.to_fields()`` or ``codename_fields()`` of the
    source's codename, or None for a one-off tip; it is checked only for shape here
    (string keys; values strings or lists of integers).
    """
    if not _LANGUAGE_TAG.fullmatch(language):
        raise ContainerError(f"The form language {language!r} is not a language tag.")
    if sealed_by not in SEALED_BY_VALUES:
        raise ContainerError(f"sealed_by must be one of {SEALED_BY_VALUES}, not {sealed_by!r}.")
    if day is None:
        day = datetime.now(UTC).date()
    day_text = day.isoformat() if isinstance(day, date) else day
    if not _DAY.fullmatch(day_text):
        raise ContainerError(f"The day {day_text!r} is not in the form YYYY-MM-DD.")
    meta: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "language": language,
        "sealed_by": sealed_by,
        "day": day_text,
    }
    if conversation is not None:
        if not all(isinstance(k, str) and _is_field_value(v) for k, v in conversation.items()):
            raise ContainerError(
                "The conversation fields must be strings or lists of integers under string keys."
            )
        meta[CONVERSATION_KEY] = dict(conversation)
    return meta


def _is_field_value(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(type(item) is int for item in value)


def meta_json(meta: Mapping[str, object]) -> bytes:
    """``submission.json``'s bytes: the JSON, spaces, a newline; META_PADDED_BYTES in all."""
    text = json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True).encode()
    if len(text) + 1 > META_PADDED_BYTES:
        raise ContainerError(f"submission.json would exceed {META_PADDED_BYTES} bytes.")
    return text + b" " * (META_PADDED_BYTES - 1 - len(text)) + b"\n"


class SubmissionArchive:
    """Writes one submission: ``message()``, then per attachment ``file_header()``,
    ``file_data()``... ``file_end()``, then ``finish()``."""

    def __init__(
        self,
        *,
        language: str,
        sealed_by: str,
        day: date | str | None = None,
        conversation: Mapping[str, object] | None = None,
    ) -> None:
        self.meta = submission_meta(language, sealed_by, day, conversation)
        self.length = 0
        """Bytes returned so far; after ``finish()``, the padded length of the whole archive."""
        self.files: list[tuple[str, int]] = []
        """(stored name, size) of each attachment, in order."""
        self._names = NameAllocator()
        self._stage = "start"
        self._remaining = 0

    def _emit(self, data: bytes) -> bytes:
        self.length += len(data)
        return data

    def _expect(self, stage: str, action: str) -> None:
        if self._stage != stage:
            raise ContainerError(f"Cannot {action} now (the archive is at stage {self._stage!r}).")

    def message(self, text: str) -> bytes:
        """The ``message.txt`` entry; must come first, exactly once."""
        self._expect("start", "add the message")
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ContainerError("The message contains characters UTF-8 cannot hold.") from None
        self._stage = "between"
        entry = tarformat.file_header(MESSAGE_PATH, len(body))
        return self._emit(entry + body + tarformat.padding_after(len(body)))

    def file_header(self, name: str, size: int) -> bytes:
        """Starts an attachment of exactly ``size`` bytes under a sanitised, unique name."""
        self._expect("between", "start an attachment")
        if size < 0:
            raise ContainerError("An attachment size cannot be negative.")
        stored_name = self._names.allocate(name)
        self.files.append((stored_name, size))
        self._stage, self._remaining = "in_file", size
        return self._emit(tarformat.file_header(FILES_DIR + stored_name, size))

    def file_data(self, chunk: bytes) -> bytes:
        """Passes a piece of the current attachment through, counting it."""
        self._expect("in_file", "add attachment data")
        if len(chunk) > self._remaining:
            raise ContainerError("The attachment is longer than its declared size.")
        self._remaining -= len(chunk)
        return self._emit(chunk)

    def file_end(self) -> bytes:
        """Ends the current attachment; refuses one shorter than declared."""
        self._expect("in_file", "end an attachment")
        if self._remaining:
            raise ContainerError(
                f"The attachment is {self._remaining} bytes shorter than its declared size."
            )
        self._stage = "between"
        return self._emit(tarformat.padding_after(self.files[-1][1]))

    def finish(self) -> Iterator[bytes]:
        """``submission.json``, the end-of-archive blocks, then the Padmé zeros, in chunks.

        The archive is final as soon as this returns (``length`` is the padded length);
        the chunks are produced as they are iterated, so padding never sits in memory.
        """
        self._expect("between", "finish the archive")
        self._stage = "finished"
        body = meta_json(self.meta)
        trailer = (
            tarformat.file_header(META_PATH, len(body))
            + body
            + tarformat.padding_after(len(body))
            + tarformat.END_OF_ARCHIVE
        )
        archive_length = self.length + len(trailer)
        padded_length = padme_length(archive_length)
        self.length = padded_length
        return _trailer_chunks(trailer, padded_length - archive_length)


def _trailer_chunks(trailer: bytes, padding: int) -> Iterator[bytes]:
    yield trailer
    while padding > 0:
        step = min(padding, len(_PADDING_CHUNK))
        yield _PADDING_CHUNK if step == len(_PADDING_CHUNK) else bytes(step)
        padding -= step


def build_archive(
    message: str,
    files: Iterable[tuple[str, bytes]] = (),
    *,
    language: str = "ru",
    sealed_by: str = "server",
    day: date | str | None = None,
    conversation: Mapping[str, object] | None = None,
) -> bytes:
    """A whole padded submission archive in memory (for small submissions and tests)."""
    archive = SubmissionArchive(
        language=language, sealed_by=sealed_by, day=day, conversation=conversation
    )
    parts = [archive.message(message)]
    for name, data in files:
        parts += [archive.file_header(name, len(data)), archive.file_data(data), archive.file_end()]
    parts.extend(archive.finish())
    return b"".join(parts)
