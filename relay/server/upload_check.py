"""Is a finished browser upload a submission we accept? Is a reviewer's reply well formed?

A browser-sealed submission reaches the server as an opaque file. The server
cannot decrypt it (promise 3), but it can check the envelope: an age v1 header
with exactly one X25519 stanza per configured reviewer and nothing else (no
passphrase stanza, no unknown type a reviewer's tools would ignore, no missing
reviewer), then a payload whose length STREAM can produce. Anything else would
be a submission some reviewer could not read, so it is refused and deleted.
A reply is checked the same way, with exactly one more X25519 stanza: the
source's reply recipient.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relay.crypto import format as age_format
from relay.crypto import stream as age_stream
from relay.crypto.errors import AgeError

X25519_STANZA_TYPE = "X25519"
_X25519_SHARE_BYTES = 32
_WRAPPED_FILE_KEY_BYTES = 32


class UploadRejected(Exception):
    """The upload is not an age file for this relay's reviewers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_sealed_upload(path: Path, reviewer_count: int) -> None:
    """Raise ``UploadRejected`` with a clear reason unless ``path`` is acceptable."""
    _check_age_file(path, reviewer_count, _reviewers_missing)


def check_reply_file(path: Path, reviewer_count: int) -> None:
    """A reply: an age file to every reviewer plus exactly one more (the source's) recipient.

    Raise ``UploadRejected`` with a clear reason otherwise.
    """
    _check_age_file(path, reviewer_count + 1, _reply_recipients_wrong)


def _reviewers_missing(found: int, expected: int) -> str:
    return (
        f"The upload is encrypted to {found} recipient(s); this relay has "
        f"{expected} reviewer(s), and each must be able to decrypt it."
    )


def _reply_recipients_wrong(found: int, expected: int) -> str:
    return (
        f"The reply is encrypted to {found} recipient(s); it must be encrypted to "
        f"this relay's {expected - 1} reviewer(s) and to the source: {expected}."
    )


def _check_age_file(path: Path, expected: int, count_message: Callable[[int, int], str]) -> None:
    size = path.stat().st_size
    with path.open("rb") as src:
        try:
            header = age_format.read_header(src)
        except AgeError as error:
            raise UploadRejected(
                f"The upload is not a binary age v1 file: {error}"
            ) from None
        header_length = src.tell()
    _check_stanzas(header.stanzas, expected, count_message)
    payload_length = size - header_length - age_stream.NONCE_SIZE
    if payload_length < 0 or not age_stream.check_payload_length(payload_length):
        raise UploadRejected(
            "The upload's encrypted payload is truncated or has an impossible length."
        )


def _check_stanzas(
    stanzas: tuple[age_format.Stanza, ...],
    expected: int,
    count_message: Callable[[int, int], str],
) -> None:
    other_types = sorted({s.type for s in stanzas if s.type != X25519_STANZA_TYPE})
    if other_types:
        raise UploadRejected(
            "The upload is encrypted to recipients this relay does not use "
            f"(stanza types: {', '.join(other_types)})."
        )
    if len(stanzas) != expected:
        raise UploadRejected(count_message(len(stanzas), expected))
    for stanza in stanzas:
        if not _is_well_formed_x25519(stanza):
            raise UploadRejected("The upload has a malformed X25519 recipient stanza.")
    shares = {stanza.args[0] for stanza in stanzas}
    if len(shares) != len(stanzas):
        raise UploadRejected("The upload repeats an X25519 recipient stanza.")


def _is_well_formed_x25519(stanza: age_format.Stanza) -> bool:
    if len(stanza.args) != 1 or len(stanza.body) != _WRAPPED_FILE_KEY_BYTES:
        return False
    try:
        share = age_format.b64decode(stanza.args[0])
    except AgeError:
        return False
    return len(share) == _X25519_SHARE_BYTES
