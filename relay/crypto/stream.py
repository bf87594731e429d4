"""The age payload: STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015).

The plaintext is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305
under the payload key; the nonce is an 11-byte big-endian chunk counter and a
final byte that is 1 only for the last chunk. Truncation, reordering and
appending are therefore all detected. Only the last chunk may be short, and it
may be empty only when the whole plaintext is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import primitives
from .errors import PayloadError

CHUNK_SIZE = 64 * 1024
SEALED_CHUNK_SIZE = CHUNK_SIZE + primitives.TAG_SIZE
NONCE_SIZE = 16  # the payload nonce stored after the header
PAYLOAD_LABEL = b"payload"
_MAX_COUNTER = (1 << 88) - 1


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    """HKDF(file key, salt = payload nonce, info = "payload")."""
    return primitives.hkdf_sha256(file_key, nonce, PAYLOAD_LABEL)


def _chunk_nonce(counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise PayloadError("The file is too large for age.")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def payload_length(plaintext_length: int) -> int:
    """Ciphertext bytes (after the 16-byte nonce) for a plaintext of this length."""
    if plaintext_length < 0:
        raise ValueError("length must not be negative")
    chunks = max(1, -(-plaintext_length // CHUNK_SIZE))
    return plaintext_length + chunks * primitives.TAG_SIZE


def check_payload_length(ciphertext_length: int) -> bool:
    """Whether a payload (after the nonce) of this length can be valid STREAM."""
    if ciphertext_length < primitives.TAG_SIZE:
        return False
    last = ciphertext_length % SEALED_CHUNK_SIZE
    if last == 0:
        return True  # every chunk full, the last one included
    # The last chunk is short: it needs a tag, and data unless it is alone.
    if ciphertext_length < SEALED_CHUNK_SIZE:
        return last >= primitives.TAG_SIZE
    return last > primitives.TAG_SIZE


class StreamEncryptor:
    """Seals a plaintext fed in pieces; constant memory (under two chunks)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != primitives.KEY_SIZE:
            raise ValueError("STREAM key must be 32 bytes")
        self._key = key
        self._counter = 0
        self._pending = bytearray()
        self._finished = False

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Seal every chunk that is certainly not the last; return the ciphertext."""
        if self._finished:
            raise ValueError("update() after finish()")
        self._pending += data
        if len(self._pending) <= CHUNK_SIZE:
            return b""
        out = []
        start = 0
        # Keep at least one byte back: the last chunk must be sealed as last.
        while len(self._pending) - start > CHUNK_SIZE:
            chunk = bytes(self._pending[start : start + CHUNK_SIZE])
            out.append(primitives.aead_seal(self._key, _chunk_nonce(self._counter, False), chunk))
            self._counter += 1
            start += CHUNK_SIZE
        del self._pending[:start]
        return b"".join(out)

    def finish(self) -> bytes:
        """Seal the last chunk (possibly a full one, or empty for an empty input)."""
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        last = bytes(self._pending)
        self._pending = bytearray()
        return primitives.aead_seal(self._key, _chunk_nonce(self._counter, True), last)


class StreamDecryptor:
    """Opens a STREAM ciphertext fed in pieces; returns only authenticated bytes."""

    def __init__(self, key: bytes) -> None:
        if len(key) != primitives.KEY_SIZE:
            raise ValueError("STREAM key must be 32 bytes")
        self._key = key
        self._counter = 0
        self._pending = bytearray()
        self._finished = False

    @property
    def chunks_opened(self) -> int:
        """How many chunks have been authenticated so far."""
        return self._counter

    def _open(self, sealed: bytes, last: bool) -> bytes:
        try:
            return primitives.aead_open(self._key, _chunk_nonce(self._counter, last), sealed)
        except primitives.InvalidTagError:
            raise PayloadError(chunk=self._counter) from None

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Open every chunk that is certainly not the last."""
        if self._finished:
            raise ValueError("update() after finish()")
        self._pending += data
        out = []
        start = 0
        # A full sealed chunk followed by more data cannot be the last one.
        while len(self._pending) - start > SEALED_CHUNK_SIZE:
            out.append(self.open_next(bytes(self._pending[start : start + SEALED_CHUNK_SIZE])))
            start += SEALED_CHUNK_SIZE
        if start:
            del self._pending[:start]
        return b"".join(out)

    def open_next(self, sealed: bytes) -> bytes:
        """Open one full chunk known not to be the last."""
        opened = self._open(sealed, False)
        self._counter += 1
        return opened

    def finish(self) -> bytes:
        """Open the last chunk; PayloadError if the stream was cut or extended."""
        last = bytes(self._pending)
        self._pending = bytearray()
        return self.open_last(last)

    def open_last(self, last: bytes) -> bytes:
        """Open the final chunk (what is left when the input ends)."""
        if self._finished:
            raise ValueError("the last chunk was already opened")
        self._finished = True
        if len(last) < primitives.TAG_SIZE:
            raise PayloadError(
                "The file is truncated (it ends in the middle of a chunk)."
                if self._counter or last
                else "The file is truncated (the payload is missing).",
                chunk=self._counter,
            )
        if len(last) == primitives.TAG_SIZE and self._counter > 0:
            # An empty last chunk is only valid for an empty plaintext.
            raise PayloadError(chunk=self._counter)
        try:
            return self._open(last, True)
        except PayloadError:
            # A full chunk at the very end that is not marked last means the
            # file was truncated at a chunk boundary.
            if len(last) == SEALED_CHUNK_SIZE:
                try:
                    primitives.aead_open(self._key, _chunk_nonce(self._counter, False), last)
                except primitives.InvalidTagError:
                    pass
                else:
                    raise PayloadError(
                        f"The file is truncated (it ends after chunk {self._counter}).",
                        chunk=self._counter + 1,
                    ) from None
            raise


def seal_chunks(key: bytes, read: Callable[[int], bytes]) -> Iterator[bytes]:
    """Seal everything ``read`` returns, chunk by chunk (a tight loop for files)."""
    seal = primitives.aead_seal
    counter = 0
    current = _read_exactly(read, CHUNK_SIZE)
    while True:
        following = _read_exactly(read, CHUNK_SIZE) if len(current) == CHUNK_SIZE else b""
        last = not following
        yield seal(key, _chunk_nonce(counter, last), current)
        if last:
            return
        counter += 1
        current = following


def open_chunks(key: bytes, read: Callable[[int], bytes]) -> Iterator[bytes]:
    """Open a sealed payload read from ``read``; yields authenticated plaintext only."""
    decryptor = StreamDecryptor(key)
    current = _read_exactly(read, SEALED_CHUNK_SIZE)
    while True:
        following = (
            _read_exactly(read, SEALED_CHUNK_SIZE) if len(current) == SEALED_CHUNK_SIZE else b""
        )
        if not following:
            yield decryptor.open_last(current)
            return
        yield decryptor.open_next(current)
        current = following


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    """Read ``size`` bytes unless the input ends first (pipes return short reads)."""
    data = read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing:
        more = read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)
