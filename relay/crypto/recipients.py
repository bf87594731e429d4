"""Recipients: public keys that *wrap* a file key into a header stanza.

Safe for the server: nothing here can decrypt anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from . import bech32, primitives
from .errors import KeyFormatError
from .format import Stanza, b64encode

X25519_LABEL = b"age-encryption.org/v1/X25519"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
RECIPIENT_HRP = "age"
_ZERO_NONCE = bytes(primitives.AEAD_NONCE_SIZE)
DEFAULT_SCRYPT_WORK_FACTOR = 18


class Recipient(Protocol):
    """Anything that can wrap a file key for someone."""

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


class X25519Recipient:
    """An age X25519 public key (``age1...``)."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != primitives.X25519_SIZE:
            raise KeyFormatError("An X25519 recipient must be 32 bytes.")
        self.public_key = bytes(public_key)

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        """Parse an ``age1...`` string; KeyFormatError with a hint if it is not one."""
        text = text.strip()
        if text.startswith("AGE-SECRET-KEY-"):
            raise KeyFormatError(
                "This is a secret key (AGE-SECRET-KEY-...), not a recipient. "
                "Never share it; give out its age1... recipient instead."
            )
        if text != text.lower():
            raise KeyFormatError("An age recipient is written in lower case (age1...).")
        hrp, data = bech32.decode(text)
        if hrp != RECIPIENT_HRP:
            raise KeyFormatError("This is not an age X25519 recipient (it must start age1).")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public_key)

    def __repr__(self) -> str:
        return f"X25519Recipient({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One ``X25519`` stanza: an ephemeral share and the wrapped file key."""
        ephemeral = primitives.random_bytes(primitives.X25519_SIZE)
        share = primitives.x25519_base(ephemeral)
        shared_secret = primitives.x25519(ephemeral, self.public_key)
        wrap_key = primitives.hkdf_sha256(shared_secret, share + self.public_key, X25519_LABEL)
        body = primitives.aead_seal(wrap_key, _ZERO_NONCE, file_key)
        return [Stanza("X25519", (b64encode(share),), body)]


class ScryptRecipient:
    """A passphrase; its stanza must be the only one in a header."""

    def __init__(self, passphrase: bytes, work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR) -> None:
        if not passphrase:
            raise ValueError("the passphrase must not be empty")
        if not 1 <= work_factor <= 30:
            raise ValueError("scrypt work factor must be between 1 and 30")
        self._passphrase = bytes(passphrase)
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One ``scrypt`` stanza: salt, work factor and the wrapped file key."""
        salt = primitives.random_bytes(16)
        wrap_key = primitives.scrypt(self._passphrase, SCRYPT_LABEL + salt, self.work_factor)
        body = primitives.aead_seal(wrap_key, _ZERO_NONCE, file_key)
        return [Stanza("scrypt", (b64encode(salt), str(self.work_factor)), body)]


def parse_recipient(text: str) -> X25519Recipient:
    """Parse a recipient string (today: X25519 ``age1...`` only)."""
    return X25519Recipient.parse(text)


def wrap_for_all(recipients: Sequence[Recipient], file_key: bytes) -> list[Stanza]:
    """Stanzas for every recipient; a passphrase may not be mixed with others."""
    if not recipients:
        raise ValueError("at least one recipient is required")
    if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
        raise ValueError("a passphrase cannot be combined with other recipients")
    stanzas: list[Stanza] = []
    for recipient in recipients:
        stanzas.extend(recipient.wrap(file_key))
    return stanzas
