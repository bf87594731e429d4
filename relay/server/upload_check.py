"""Is a finished browser upload a submission we accept? Is a reviewer's reply well formed?

A browser-sealed submission reaches the server as an opaque file. The server
cannot decrypt it (promise 3), but it can check the envelope: an age v1 header
with exactly one stanza per configured reviewer and nothing else (no
passphrase stanza, no unknown type a reviewer's tools would ignore, no missing
reviewer), then a payload whose length STREAM can produce. Anything else would
be a submission some reviewer could not read, so it is refused and deleted.

- An age reviewer's stanza is ``X25519``: well formed, one per age reviewer
  (which X25519 stanza is whose cannot be told, by design).
- An OpenPGP reviewer's stanza is ``tiprelay-openpgp <FINGERPRINT>``: exactly
  one per OpenPGP reviewer, naming them, and its OpenPGP message must be
  addressed to one of their encryption keys. That is read from the PKESK
  packet by relay.crypto.openpgp_packets, a small bounded parser: bytes from
  an anonymous client never reach gpg.

A reply is checked the same way, with exactly one more X25519 stanza: the
source's reply recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from relay.crypto import format as age_format
from relay.crypto import stream as age_stream
from relay.crypto.errors import AgeError
from relay.crypto.openpgp_packets import read_session_key_recipient
from relay.crypto.openpgp_recipient import STANZA_TYPE as OPENPGP_STANZA_TYPE
from relay.keyring import Keyring

X25519_STANZA_TYPE = "X25519"
_X25519_SHARE_BYTES = 32
_WRAPPED_FILE_KEY_BYTES = 32


class UploadRejected(Exception):
    """The upload is not an age file for this relay's reviewers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ExpectedRecipients:
    """Whom an upload must be encrypted to: a count of X25519 stanzas, and for each
    OpenPGP reviewer's fingerprint the key ids their message may be addressed to."""

    x25519_count: int
    openpgp: Mapping[str, frozenset[str]]

    @property
    def total(self) -> int:
        return self.x25519_count + len(self.openpgp)

    def with_source(self) -> ExpectedRecipients:
        """The same, plus the source's own X25519 reply recipient."""
        return ExpectedRecipients(self.x25519_count + 1, self.openpgp)


def expected_recipients(keyring: Keyring | None) -> ExpectedRecipients:
    """What an upload to the relay with ``keyring`` must be encrypted to: the reviewers
    tips are sealed to now (KeyringHolder.usable), nobody when it is None."""
    if keyring is None:
        return ExpectedRecipients(0, {})
    return ExpectedRecipients(len(keyring.age_recipients), keyring.openpgp_encryption_key_ids())


def check_sealed_upload(path: Path, expected: ExpectedRecipients) -> None:
    """Raise ``UploadRejected`` with a clear reason unless ``path`` is acceptable."""
    _check_age_file(path, expected, _reviewers_missing)


def check_reply_file(path: Path, expected: ExpectedRecipients) -> None:
    """A reply: an age file to every reviewer plus exactly one more (the source's) recipient.

    ``expected`` is the reviewers' set; raise ``UploadRejected`` with a clear reason
    otherwise.
    """
    _check_age_file(path, expected.with_source(), _reply_recipients_wrong)


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


def _check_age_file(
    path: Path, expected: ExpectedRecipients, count_message: Callable[[int, int], str]
) -> None:
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
    stanzas: Sequence[age_format.Stanza],
    expected: ExpectedRecipients,
    count_message: Callable[[int, int], str],
) -> None:
    known = {X25519_STANZA_TYPE, OPENPGP_STANZA_TYPE}
    other_types = sorted({s.type for s in stanzas if s.type not in known})
    if other_types:
        raise UploadRejected(
            "The upload is encrypted to recipients this relay does not use "
            f"(stanza types: {', '.join(other_types)})."
        )
    if len(stanzas) != expected.total:
        raise UploadRejected(count_message(len(stanzas), expected.total))
    x25519 = [s for s in stanzas if s.type == X25519_STANZA_TYPE]
    for stanza in x25519:
        if not _is_well_formed_x25519(stanza):
            raise UploadRejected("The upload has a malformed X25519 recipient stanza.")
    if len({stanza.args[0] for stanza in x25519}) != len(x25519):
        raise UploadRejected("The upload repeats an X25519 recipient stanza.")
    _check_openpgp_stanzas([s for s in stanzas if s.type == OPENPGP_STANZA_TYPE], expected)
    if len(x25519) != expected.x25519_count:
        raise UploadRejected(count_message(len(stanzas), expected.total))


def _check_openpgp_stanzas(
    stanzas: Sequence[age_format.Stanza], expected: ExpectedRecipients
) -> None:
    seen: set[str] = set()
    for stanza in stanzas:
        if len(stanza.args) != 1 or stanza.args[0] not in expected.openpgp:
            raise UploadRejected(
                "The upload has an OpenPGP stanza for a key that is not one of this "
                "relay's reviewers."
            )
        fingerprint = stanza.args[0]
        if fingerprint in seen:
            raise UploadRejected(f"The upload repeats the OpenPGP stanza for {fingerprint}.")
        seen.add(fingerprint)
        try:
            recipient = read_session_key_recipient(stanza.body)
        except AgeError as error:
            raise UploadRejected(
                f"The upload's OpenPGP stanza for {fingerprint}: {error}"
            ) from None
        if recipient.key_id not in expected.openpgp[fingerprint]:
            raise UploadRejected(
                f"The upload's OpenPGP stanza for {fingerprint} is encrypted to key id "
                f"{recipient.key_id}, which is not an encryption key of that reviewer."
            )
    missing = sorted(set(expected.openpgp) - seen)
    if missing:
        raise UploadRejected(
            f"The upload has no OpenPGP stanza for reviewer key(s) {', '.join(missing)}; "
            "each reviewer must be able to decrypt it."
        )


def _is_well_formed_x25519(stanza: age_format.Stanza) -> bool:
    if len(stanza.args) != 1 or len(stanza.body) != _WRAPPED_FILE_KEY_BYTES:
        return False
    try:
        share = age_format.b64decode(stanza.args[0])
    except AgeError:
        return False
    return len(share) == _X25519_SHARE_BYTES
