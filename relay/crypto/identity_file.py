"""Identity files on disk: plain, or protected by a passphrase as stock age reads them."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from .decrypt import decrypt_stream
from .encrypt import encrypt_bytes
from .errors import KeyFormatError, NoIdentityMatchError
from .identities import ScryptIdentity, X25519Identity, parse_identity_file
from .recipients import ScryptRecipient

MAX_IDENTITY_FILE_SIZE = 1 << 20


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
    recipients = [ScryptRecipient(passphrase, work_factor)]
    return encrypt_bytes(text.encode("utf-8"), recipients, armor=True)


__all__ = ["load_identity_file", "protect_identity_file"]
