"""Identities: secret keys that *unwrap* a file key from a header stanza.

Offline code only. The server never imports this module (import-linter).
An identity returns None for "this stanza is not for me", the expected outcome
for other people's stanzas; every other problem raises.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from . import bech32, primitives
from .errors import (
    HeaderError,
    KeyFormatError,
    NoIdentityMatchError,
    WorkFactorTooHighError,
    WrongPassphraseError,
)
from .format import Stanza, b64decode
from .recipients import SCRYPT_LABEL, X25519_LABEL, ScryptRecipient, X25519Recipient

IDENTITY_HRP = "age-secret-key-"
_ZERO_NONCE = bytes(primitives.AEAD_NONCE_SIZE)
_WRAPPED_KEY_SIZE = primitives.FILE_KEY_SIZE + primitives.TAG_SIZE
DEFAULT_MAX_WORK_FACTOR = 22
MAX_IDENTITY_FILE_SIZE = 1 << 20


class Identity(Protocol):
    """Anything that can try to unwrap a file key from one stanza."""

    def unwrap(self, stanza: Stanza) -> bytes | None: ...


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


def _looks_encrypted(data: bytes) -> bool:
    start = data.lstrip()
    return start.startswith(b"age-encryption.org/") or start.startswith(b"-----BEGIN AGE")


def load_identity_file(path: Path, ask_passphrase: Callable[[], bytes]) -> list[X25519Identity]:
    """Identities from a plain or passphrase-protected identity file.

    A protected file is an age file encrypted to a passphrase (binary or
    armored), exactly what stock ``age -d -i`` accepts; the passphrase is asked
    for only then.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_IDENTITY_FILE_SIZE + 1)
    if len(data) > MAX_IDENTITY_FILE_SIZE:
        raise KeyFormatError("The identity file is too large to be an identity file.")
    if _looks_encrypted(data):
        from .decrypt import decrypt_stream  # local: decrypt imports this module

        plaintext = io.BytesIO()
        try:
            decrypt_stream(io.BytesIO(data), plaintext, [ScryptIdentity(ask_passphrase())])
        except NoIdentityMatchError:
            raise NoIdentityMatchError(
                "Wrong passphrase for the identity file, or it is not protected by a "
                "passphrase."
            ) from None
        data = plaintext.getvalue()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError("The identity file is not text.") from None
    return parse_identity_file(text)


def protect_identity_file(text: str, passphrase: bytes, work_factor: int = 18) -> bytes:
    """An identity file encrypted to a passphrase, armored (stock age reads it)."""
    from .encrypt import encrypt_bytes

    recipients = [ScryptRecipient(passphrase, work_factor)]
    return encrypt_bytes(text.encode("utf-8"), recipients, armor=True)


def unwrap_file_key(stanzas: Sequence[Stanza], identities: Sequence[Identity]) -> bytes:
    """The file key from the first stanza any identity opens.

    As the spec requires, stanzas of unknown types are skipped; a malformed
    stanza of a known type is fatal.
    """
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise HeaderError("A passphrase (scrypt) stanza must be the only one in the header.")
    passphrase_only = bool(identities) and all(isinstance(i, ScryptIdentity) for i in identities)
    for identity in identities:
        for stanza in stanzas:
            file_key = identity.unwrap(stanza)
            if file_key is None:
                continue
            if len(file_key) != primitives.FILE_KEY_SIZE:  # unreachable: body size checked
                raise HeaderError("The wrapped file key has the wrong size.")
            return file_key
    if passphrase_only and any(s.type == "scrypt" for s in stanzas):
        raise WrongPassphraseError
    if passphrase_only:
        raise NoIdentityMatchError("This file is not encrypted to a passphrase.")
    if any(s.type == "scrypt" for s in stanzas):
        raise NoIdentityMatchError("This file is encrypted to a passphrase, not to an identity.")
    raise NoIdentityMatchError


__all__ = [
    "Identity",
    "ScryptIdentity",
    "X25519Identity",
    "load_identity_file",
    "parse_identity_file",
    "protect_identity_file",
    "unwrap_file_key",
]
