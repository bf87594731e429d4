"""The few primitives age v1 is built from, each a small typed function.

pynacl (libsodium) provides X25519, ChaCha20-Poly1305 and scrypt; hashlib and
hmac provide SHA-256, HMAC, HKDF and PBKDF2. Every function checks its inputs' lengths,
so that a mistake elsewhere fails loudly here instead of weakening the crypto.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import nacl.bindings
import nacl.exceptions

KEY_SIZE = 32
TAG_SIZE = 16
AEAD_NONCE_SIZE = 12
X25519_SIZE = 32
FILE_KEY_SIZE = 16


class InvalidTagError(Exception):
    """An AEAD tag did not verify (internal; callers translate it)."""


class LowOrderPointError(Exception):
    """An X25519 share gave the all-zero shared secret (internal)."""


def random_bytes(size: int) -> bytes:
    """Bytes from the operating system's CSPRNG."""
    return os.urandom(size)


def _check_length(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 of ``message`` under ``key``."""
    return hmac.new(key, message, hashlib.sha256).digest()


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``."""
    return hashlib.sha256(data).digest()


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 section 2.2) with SHA-256: the 32-byte PRK."""
    return hmac_sha256(salt if salt else b"\x00" * 32, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """HKDF-Expand (RFC 5869 section 2.3) with SHA-256."""
    _check_length("prk", prk, KEY_SIZE)
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF output length out of range")
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac_sha256(prk, block + info + bytes([counter]))
        output += block
        counter += 1
    return output[:length]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """HKDF-SHA-256 (RFC 5869), extract then expand."""
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


MAX_PBKDF2_ITERATIONS = 1 << 24


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int = KEY_SIZE) -> bytes:
    """PBKDF2-HMAC-SHA-256 (RFC 8018); hashlib's C loop, so 2**18 rounds take ~0.2 s."""
    if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise ValueError("PBKDF2 iteration count out of range")
    if not 0 < length <= 255 * 32:
        raise ValueError("PBKDF2 output length out of range")
    return hashlib.pbkdf2_hmac("sha256", bytes(password), bytes(salt), iterations, length)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings without leaking where they differ."""
    return hmac.compare_digest(a, b)


def aead_seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """ChaCha20-Poly1305 (RFC 8439) encryption, no associated data."""
    _check_length("key", key, KEY_SIZE)
    _check_length("nonce", nonce, AEAD_NONCE_SIZE)
    sealed: bytes = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        bytes(plaintext), None, nonce, key
    )
    return sealed


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """ChaCha20-Poly1305 decryption; raises InvalidTagError on any failure."""
    _check_length("key", key, KEY_SIZE)
    _check_length("nonce", nonce, AEAD_NONCE_SIZE)
    if len(ciphertext) < TAG_SIZE:
        raise InvalidTagError
    try:
        opened: bytes = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes(ciphertext), None, nonce, key
        )
    except nacl.exceptions.CryptoError as exc:
        raise InvalidTagError from exc
    return opened


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519(scalar, point); refuses the all-zero (low-order) result."""
    _check_length("scalar", scalar, X25519_SIZE)
    _check_length("point", point, X25519_SIZE)
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(scalar, point)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.CryptoError) as exc:
        raise LowOrderPointError from exc
    if shared == bytes(X25519_SIZE):
        raise LowOrderPointError
    return shared


def x25519_base(scalar: bytes) -> bytes:
    """The X25519 public key of ``scalar``."""
    _check_length("scalar", scalar, X25519_SIZE)
    public: bytes = nacl.bindings.crypto_scalarmult_base(scalar)
    return public


def scrypt(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    """scrypt(N=2**log_n, r=8, p=1) to a 32-byte key."""
    if not 1 <= log_n <= 30:
        raise ValueError("scrypt work factor out of range")
    n = 1 << log_n
    # libsodium wants a memory ceiling; 128 * r * N plus slack for the state.
    maxmem = 128 * 8 * n * 2 + (1 << 20)
    key: bytes = nacl.bindings.crypto_pwhash_scryptsalsa208sha256_ll(
        passphrase, salt, n, 8, 1, dklen=KEY_SIZE, maxmem=maxmem
    )
    return key


# --- In-place AEAD for bulk payloads ------------------------------------------
# pynacl's public wrappers allocate and copy twice per call. For file payloads
# we call the same libsodium functions through pynacl's own cffi binding, on
# caller-owned buffers, with no copies. cffi releases the GIL during the call,
# which lets two chunks be sealed on two cores at once.
from nacl._sodium import ffi as _ffi  # noqa: E402
from nacl._sodium import lib as _lib  # noqa: E402


def aead_seal_into(key: bytes, nonce: bytes, plaintext: memoryview, out: memoryview) -> None:
    """Seal ``plaintext`` into ``out`` (exactly ``len(plaintext) + TAG_SIZE`` bytes)."""
    _check_length("key", key, KEY_SIZE)
    _check_length("nonce", nonce, AEAD_NONCE_SIZE)
    if len(out) != len(plaintext) + TAG_SIZE:
        raise ValueError("output buffer has the wrong size")
    written = _ffi.new("unsigned long long *")
    rc = _lib.crypto_aead_chacha20poly1305_ietf_encrypt(
        _ffi.from_buffer(out, require_writable=True), written,
        _ffi.from_buffer(plaintext), len(plaintext),
        _ffi.NULL, 0, _ffi.NULL, nonce, key,
    )
    if rc != 0 or written[0] != len(out):
        raise RuntimeError("libsodium failed to encrypt")


def aead_open_into(key: bytes, nonce: bytes, ciphertext: memoryview, out: memoryview) -> bool:
    """Open ``ciphertext`` into ``out``; False (and ``out`` undefined) if the tag fails."""
    _check_length("key", key, KEY_SIZE)
    _check_length("nonce", nonce, AEAD_NONCE_SIZE)
    if len(ciphertext) < TAG_SIZE or len(out) != len(ciphertext) - TAG_SIZE:
        raise ValueError("buffer sizes do not match")
    written = _ffi.new("unsigned long long *")
    rc = _lib.crypto_aead_chacha20poly1305_ietf_decrypt(
        _ffi.from_buffer(out, require_writable=True), written, _ffi.NULL,
        _ffi.from_buffer(ciphertext), len(ciphertext),
        _ffi.NULL, 0, nonce, key,
    )
    return bool(rc == 0 and written[0] == len(out))
