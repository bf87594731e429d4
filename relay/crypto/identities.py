"""age's own identities: secret keys that *unwrap* a file key from a header stanza.

Offline code only. The server never imports this module (import-linter).
An identity returns None for "this stanza is not for me", the expected outcome
for other people's stanzas; every other problem raises. What an identity is
(the protocol) and how the first match is found: relay.crypto.unwrap; identity
files on disk: relay.crypto.identity_file; OpenPGP: relay.crypto.openpgp_identity.
"""

from __future__ import annotations

from . import bech32, primitives
from .errors import HeaderError, KeyFormatError, WorkFactorTooHighError
from .format import Stanza, b64decode
from .recipients import SCRYPT_LABEL, X25519_LABEL, X25519Recipient

IDENTITY_HRP = "age-secret-key-"
_ZERO_NONCE = bytes(primitives.AEAD_NONCE_SIZE)
_WRAPPED_KEY_SIZE = primitives.FILE_KEY_SIZE + primitives.TAG_SIZE
DEFAULT_MAX_WORK_FACTOR = 22


def _unseal_file_key(wrap_key: bytes, body: bytes) -> bytes | None:
    try:
        return primitives.aead_open(wrap_key, _ZERO_NONCE, body)
    except primitives.InvalidTagError:
        return None


class X25519Identity:
    """An age X25519 secret key (``AGE-SECRET-KEY-1...``)."""

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) != primitives.X25519_SIZE:
            raise KeyFormatError("An X25519 identity must be 32 bytes.")
        self._secret_key = bytes(secret_key)
        self._recipient = X25519Recipient(primitives.x25519_base(self._secret_key))

    @classmethod
    def generate(cls) -> X25519Identity:
        """A new random identity."""
        return cls(primitives.random_bytes(primitives.X25519_SIZE))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        """Parse ``AGE-SECRET-KEY-1...``; KeyFormatError if it is not one."""
        text = text.strip()
        if text != text.upper():
            raise KeyFormatError("An age identity is written in upper case (AGE-SECRET-KEY-1...).")
        hrp, data = bech32.decode(text)
        if hrp != IDENTITY_HRP:
            raise KeyFormatError("This is not an age identity (AGE-SECRET-KEY-1...).")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self._secret_key).upper()

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={self._recipient})"  # never the secret

    @property
    def recipient(self) -> X25519Recipient:
        """The public recipient that encrypts to this identity."""
        return self._recipient

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key if this stanza is for us, None if not; raises if malformed."""
        if stanza.type != "X25519":
            return None
        if len(stanza.args) != 1:
            raise HeaderError("An X25519 stanza must have exactly one argument.")
        share = b64decode(stanza.args[0])
        if len(share) != primitives.X25519_SIZE:
            raise HeaderError("An X25519 stanza has a share of the wrong size.")
        if len(stanza.body) != _WRAPPED_KEY_SIZE:
            raise HeaderError("An X25519 stanza has a body of the wrong size.")
        try:
            shared_secret = primitives.x25519(self._secret_key, share)
        except primitives.LowOrderPointError:
            raise HeaderError("An X25519 stanza has an invalid (low-order) share.") from None
        salt = share + self._recipient.public_key
        wrap_key = primitives.hkdf_sha256(shared_secret, salt, X25519_LABEL)
        return _unseal_file_key(wrap_key, stanza.body)


class ScryptIdentity:
    """A passphrase, for files encrypted to a passphrase."""

    def __init__(self, passphrase: bytes, max_work_factor: int = DEFAULT_MAX_WORK_FACTOR) -> None:
        self._passphrase = bytes(passphrase)
        self.max_work_factor = max_work_factor

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key for the right passphrase, None for a wrong one."""
        if stanza.type != "scrypt":
            return None
        if len(stanza.args) != 2:
            raise HeaderError("A scrypt stanza must have exactly two arguments.")
        salt = b64decode(stanza.args[0])
        if len(salt) != 16:
            raise HeaderError("A scrypt stanza has a salt of the wrong size.")
        work_factor_text = stanza.args[1]
        if not work_factor_text.isascii() or not work_factor_text.isdigit():
            raise HeaderError("A scrypt stanza has an invalid work factor.")
        if work_factor_text.startswith("0") or len(work_factor_text) > 2:
            raise HeaderError("A scrypt stanza has an invalid work factor.")
        work_factor = int(work_factor_text)
        if work_factor > self.max_work_factor:
            raise WorkFactorTooHighError(
                f"The passphrase work factor ({work_factor}) is higher than the maximum "
                f"accepted ({self.max_work_factor}); this file would take too long to open."
            )
        if len(stanza.body) != _WRAPPED_KEY_SIZE:
            raise HeaderError("A scrypt stanza has a body of the wrong size.")
        wrap_key = primitives.scrypt(self._passphrase, SCRYPT_LABEL + salt, work_factor)
        return _unseal_file_key(wrap_key, stanza.body)


def parse_identity_file(text: str) -> list[X25519Identity]:
    """Every identity in an identity file; blank lines and ``#`` comments allowed."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(X25519Identity.parse(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"Line {number} of the identity file: {exc}") from None
    if not identities:
        raise KeyFormatError("The identity file contains no identity.")
    return identities


__all__ = [
    "ScryptIdentity",
    "X25519Identity",
    "parse_identity_file",
]
