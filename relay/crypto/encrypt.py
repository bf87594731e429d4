"""Streaming age encryption (server-safe: uses only public recipients)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import BinaryIO

from . import primitives, stream
from .armor import ArmorWriter
from .format import write_header
from .recipients import Recipient, wrap_for_all

READ_SIZE = stream.CHUNK_SIZE


class Encryptor:
    """Incremental encryption with constant memory, for data that arrives in pieces.

    ``start()`` gives the header and payload nonce; ``update()`` the ciphertext
    of every chunk known not to be last; ``finish()`` the last chunk.
    """

    def __init__(self, recipients: Sequence[Recipient]) -> None:
        file_key = primitives.random_bytes(primitives.FILE_KEY_SIZE)
        self._header = write_header(wrap_for_all(recipients, file_key), file_key)
        self._nonce = primitives.random_bytes(stream.NONCE_SIZE)
        self._stream = stream.StreamEncryptor(stream.payload_key(file_key, self._nonce))
        self._started = False

    def start(self) -> bytes:
        """The header and the payload nonce: the first bytes of the file."""
        if self._started:
            raise ValueError("start() called twice")
        self._started = True
        return self._header + self._nonce

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Ciphertext for the chunks completed by ``data`` (may be empty)."""
        if not self._started:
            raise ValueError("start() must be called first")
        return self._stream.update(data)

    def finish(self) -> bytes:
        """The last chunk; the file is complete after it."""
        if not self._started:
            raise ValueError("start() must be called first")
        return self._stream.finish()


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, recipients: Sequence[Recipient], *, armor: bool = False
) -> None:
    """Encrypt everything readable from ``src`` into ``dst``, in constant memory."""
    file_key = primitives.random_bytes(primitives.FILE_KEY_SIZE)
    header = write_header(wrap_for_all(recipients, file_key), file_key)
    nonce = primitives.random_bytes(stream.NONCE_SIZE)
    out: BinaryIO = dst
    writer = None
    if armor:
        writer = ArmorWriter(dst)
        out = writer  # type: ignore[assignment]
    out.write(header + nonce)
    for sealed in stream.seal_blocks(stream.payload_key(file_key, nonce), stream.readinto_of(src)):
        out.write(sealed)
    if writer is not None:
        writer.close()


def encrypt_bytes(data: bytes, recipients: Sequence[Recipient], *, armor: bool = False) -> bytes:
    """Encrypt a small byte string in memory."""
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, recipients, armor=armor)
    return out.getvalue()
