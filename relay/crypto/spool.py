"""Buffering data of unknown size without writing plaintext to disk.

A multipart attachment's size is known only at its end, yet its tar header,
which must come first, needs it. The server therefore spools each attachment
to an anonymous temporary file (unlinked from birth, so nothing survives a
crash), sealed with STREAM under a random key that exists only in this
object's memory, and reads it back once the size is known.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from . import primitives, stream


class EphemeralSpool:
    """An encrypted, self-deleting buffer: write everything, then read it back."""

    def __init__(self, directory: Path | None = None) -> None:
        self._key = primitives.random_bytes(primitives.KEY_SIZE)
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._encryptor: stream.StreamEncryptor | None = stream.StreamEncryptor(self._key)
        self.size = 0

    def __enter__(self) -> EphemeralSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append plaintext (it is encrypted before it reaches the file)."""
        if self._encryptor is None:
            raise ValueError("the spool is already being read back")
        self.size += len(data)
        sealed = self._encryptor.update(data)
        if sealed:
            self._file.write(sealed)

    def chunks(self) -> Iterator[bytes]:
        """The plaintext back, in order, each piece authenticated."""
        if self._encryptor is not None:
            self._file.write(self._encryptor.finish())
            self._encryptor = None
        self._file.flush()
        self._file.seek(0)
        for plaintext in stream.open_blocks(self._key, stream.readinto_of(self._file)):
            yield bytes(plaintext)

    def close(self) -> None:
        """Forget the key and drop the file."""
        self._key = b""
        self._encryptor = None
        self._file.close()
