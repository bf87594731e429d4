"""Ed25519 signing keys for the reviewer API (RFC 8032, via pynacl).

A reviewer's online machine holds a signing key; the server holds only the
32-byte public key (``api_key = "ed25519:<base64>"`` in ``keys/<name>.toml``).
Nothing here knows about HTTP: ``relay.httpsig`` builds the bytes to sign.

The key file is text, recognisable as secret at a glance and by the keyring's
private-material check (``KEY_FILE_MARKER``)::

    # tiprelay reviewer API signing key: secret, keep it on the reviewer's machine.
    # public key: ed25519:<base64>
    TIPRELAY-ED25519-SECRET-KEY-1<64 upper-case hex digits of the 32-byte seed>

Python cannot wipe memory: the seed stays in the process until it exits.
"""

from __future__ import annotations

import base64
import binascii

import nacl.exceptions
import nacl.signing

from relay.crypto.errors import KeyFormatError

KEY_FILE_MARKER = "TIPRELAY-ED25519-SECRET-KEY-1"
PUBLIC_KEY_PREFIX = "ed25519:"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
# A key file is a few lines; anything much larger is not one.
_MAX_KEY_FILE_CHARS = 4096
_PUBLIC_KEY_COMMENT = "# public key: "


class SigningKey:
    """An Ed25519 secret key that signs reviewer API requests."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise KeyFormatError(f"An Ed25519 seed must be {SEED_SIZE} bytes.")
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key from the operating system's CSPRNG."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_key_file_text(cls, text: str) -> SigningKey:
        """Parse a key file written by ``to_key_file_text``; raises KeyFormatError."""
        if not isinstance(text, str) or len(text) > _MAX_KEY_FILE_CHARS:
            raise KeyFormatError("This is not a tiprelay API signing key file.")
        key_lines: list[str] = []
        claimed_public: str | None = None
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if line.startswith(_PUBLIC_KEY_COMMENT):
                claimed_public = line[len(_PUBLIC_KEY_COMMENT) :].strip()
            elif line and not line.startswith("#"):
                key_lines.append(line)
        if len(key_lines) != 1 or not key_lines[0].startswith(KEY_FILE_MARKER):
            raise KeyFormatError(
                "This is not a tiprelay API signing key file "
                f"(expected one {KEY_FILE_MARKER}... line)."
            )
        hex_seed = key_lines[0][len(KEY_FILE_MARKER) :]
        if len(hex_seed) != 2 * SEED_SIZE:
            raise KeyFormatError("The API signing key has the wrong length; the file is damaged.")
        try:
            seed = bytes.fromhex(hex_seed)
        except ValueError:
            raise KeyFormatError(
                "The API signing key is not valid hex; the file is damaged."
            ) from None
        key = cls(seed)
        # The comment is a checksum of sorts: a damaged seed no longer matches it.
        if claimed_public is not None and claimed_public != key.public_key_text:
            raise KeyFormatError(
                "The API signing key does not match the public key written beside it; "
                "the file is damaged."
            )
        return key

    def to_key_file_text(self) -> str:
        """The key file contents (secret!), with the public key as a comment."""
        seed = bytes(self._key).hex().upper()
        return (
            "# tiprelay reviewer API signing key: secret, keep it on the reviewer's machine.\n"
            f"{_PUBLIC_KEY_COMMENT}{self.public_key_text}\n"
            f"{KEY_FILE_MARKER}{seed}\n"
        )

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._key.verify_key)

    @property
    def public_key_text(self) -> str:
        """The public key as the operator writes it into keys/: ``ed25519:<base64>``."""
        return format_public_key(self.public_bytes)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        if not isinstance(message, bytes):
            raise TypeError("message must be bytes")
        signature: bytes = self._key.sign(message).signature
        return signature

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_key_text})"


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature; never raises for bad input."""
    if not (
        isinstance(public_key, bytes)
        and isinstance(message, bytes)
        and isinstance(signature, bytes)
        and len(public_key) == PUBLIC_KEY_SIZE
        and len(signature) == SIGNATURE_SIZE
    ):
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def format_public_key(public_key: bytes) -> str:
    """``ed25519:<standard base64>`` for a 32-byte public key."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise KeyFormatError(f"An Ed25519 public key must be {PUBLIC_KEY_SIZE} bytes.")
    return PUBLIC_KEY_PREFIX + base64.b64encode(public_key).decode("ascii")


def parse_public_key(text: str) -> bytes:
    """The 32 bytes of ``ed25519:<base64>``; raises KeyFormatError."""
    if not isinstance(text, str) or not text.startswith(PUBLIC_KEY_PREFIX):
        raise KeyFormatError(f"An API key must look like {PUBLIC_KEY_PREFIX}<base64>.")
    encoded = text[len(PUBLIC_KEY_PREFIX) :].strip()
    try:
        public_key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("The API key is not valid base64.") from None
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise KeyFormatError(f"An Ed25519 public key must be {PUBLIC_KEY_SIZE} bytes.")
    return public_key
