"""Streaming age decryption (offline only: it uses identities).

Every plaintext byte handed out has been authenticated; damage anywhere is a
PayloadError naming the chunk. Armor is detected automatically.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from . import stream
from .armor import ArmorReader, looks_armored
from .errors import HeaderError, HeaderMacError, PayloadError
from .format import read_header, verify_header_mac
from .unwrap import Identity, unwrap_file_key

_DETECT_SIZE = 2048


class _PrefixedReader(io.RawIOBase):
    """A raw stream that returns ``prefix`` and then the rest of ``src``."""

    def __init__(self, prefix: bytes, src: BinaryIO) -> None:
        self._prefix = prefix
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            size = min(len(target), len(self._prefix))
            target[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            # Straight into the caller's buffer: read() would allocate and copy
            # every block twice more (a fifth of a bundle's decryption time).
            return int(readinto(target) or 0)
        data = self._src.read(len(target))
        target[: len(data)] = data
        return len(data)


def _unarmor(src: BinaryIO) -> BinaryIO:
    prefix = src.read(_DETECT_SIZE)
    buffered = io.BufferedReader(_PrefixedReader(prefix, src), buffer_size=256 * 1024)
    if looks_armored(prefix):
        return io.BufferedReader(ArmorReader(buffered), buffer_size=256 * 1024)
    return buffered


def _open_payload(src: BinaryIO, identities: Sequence[Identity]) -> Iterator[memoryview]:
    reader = _unarmor(src)
    header = read_header(reader)
    file_key = unwrap_file_key(header.stanzas, identities)
    if not verify_header_mac(header, file_key):
        raise HeaderMacError
    nonce = reader.read(stream.NONCE_SIZE)
    if len(nonce) != stream.NONCE_SIZE:
        raise HeaderError("The file is truncated (the payload nonce is missing).")
    return stream.open_blocks(stream.payload_key(file_key, nonce), stream.readinto_of(reader))


class _DecryptedReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[memoryview]) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._current:
            try:
                # A view into the decryptor's reused buffer: it stays valid
                # until the next call to next(), which happens only once it
                # has been consumed.
                self._current = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._current))
        target[:size] = self._current[:size]
        self._current = self._current[size:]
        return size


def open_decrypted(src: BinaryIO, identities: Sequence[Identity]) -> io.BufferedReader:
    """A readable stream of the plaintext; the header is checked before it returns."""
    chunks = _open_payload(src, identities)
    return io.BufferedReader(_DecryptedReader(chunks), buffer_size=stream.CHUNK_SIZE)


def decrypt_stream(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> None:
    """Decrypt ``src`` into ``dst`` in constant memory."""
    for plaintext in _open_payload(src, identities):
        dst.write(plaintext)


def decrypt_bytes(data: bytes, identities: Sequence[Identity]) -> bytes:
    """Decrypt a small age file held in memory."""
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, identities)
    return out.getvalue()


__all__ = ["PayloadError", "decrypt_bytes", "decrypt_stream", "open_decrypted"]
