"""The age ASCII armor: strict PEM-like base64 with fixed begin and end lines.

Reading is strict, as the spec asks: 64-column lines with padded canonical
base64, only the last one shorter, LF or CRLF line ends, no headers or blank
lines; whitespace is tolerated only before the begin line and after the end
line, within a bound.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import BinaryIO

from .errors import ArmorError

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
_BYTES_PER_LINE = COLUMNS // 4 * 3
_WHITESPACE = b" \t\r\n"
MAX_SURROUNDING_WHITESPACE = 1024
_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def looks_armored(prefix: bytes) -> bool:
    """Whether a file starting with ``prefix`` should be read as armor."""
    # Text before a BEGIN line is still armor, only broken: say so, rather
    # than "not an age file".
    return prefix.lstrip(_WHITESPACE).startswith(b"-----") or BEGIN in prefix


class ArmorWriter(io.RawIOBase):
    """Writes armored output to ``dst``; ``close()`` writes the end line."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._pending = bytearray()
        self._dst.write(BEGIN + b"\n")

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._pending += data
        whole = len(self._pending) - len(self._pending) % _BYTES_PER_LINE
        if whole:
            self._dst.write(_lines(bytes(self._pending[:whole])))
            del self._pending[:whole]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self._pending:
                self._dst.write(_lines(bytes(self._pending)))
            self._dst.write(END + b"\n")
            self._pending = bytearray()
        super().close()


def _lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + COLUMNS] + b"\n" for i in range(0, len(encoded), COLUMNS))


class ArmorReader(io.RawIOBase):
    """Decodes armored input read from ``src`` (a buffered binary stream)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._buffer = b""
        self._state = "begin"  # begin -> body -> done

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and self._state != "done":
            self._advance()
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def _line(self) -> bytes:
        line = self._src.readline(COLUMNS + 3)
        if not line:
            raise ArmorError("The armored file ends before its END line.")
        if line.endswith(b"\r\n"):
            return line[:-2]
        if line.endswith(b"\n"):
            return line[:-1]
        if len(line) > COLUMNS + 1:
            raise ArmorError("The armored file has a line longer than 64 columns.")
        return line  # the last line may lack an end of line

    def _advance(self) -> None:
        if self._state == "begin":
            self._skip_leading_whitespace()
            if self._line() != BEGIN:
                raise ArmorError("The armored file does not start with the age BEGIN line.")
            self._state = "body"
            return
        line = self._line()
        if line == END:
            self._finish()
            return
        if len(line) > COLUMNS:
            raise ArmorError("The armored file has a line longer than 64 columns.")
        if not line or not _BASE64_ALPHABET.issuperset(line):
            raise ArmorError("The armored file contains invalid characters.")
        self._buffer = _decode_line(line)
        if len(line) < COLUMNS or line.endswith(b"="):
            if self._line() != END:
                raise ArmorError("The armored file has a short line before its end.")
            self._finish()

    def _skip_leading_whitespace(self) -> None:
        for _ in range(MAX_SURROUNDING_WHITESPACE):
            peeked = _peek(self._src)
            if not peeked or peeked[:1] not in (b" ", b"\t", b"\r", b"\n"):
                return
            self._src.read(1)
        raise ArmorError("The armored file starts with too much whitespace.")

    def _finish(self) -> None:
        rest = self._src.read(MAX_SURROUNDING_WHITESPACE + 1)
        if len(rest) > MAX_SURROUNDING_WHITESPACE or rest.strip(_WHITESPACE):
            raise ArmorError("The armored file has data after its END line.")
        self._state = "done"


def _decode_line(line: bytes) -> bytes:
    if len(line) % 4:
        raise ArmorError("The armored file has invalid base64 (bad length or padding).")
    try:
        decoded = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ArmorError("The armored file has invalid base64.") from exc
    if base64.b64encode(decoded) != line:
        raise ArmorError("The armored file has non-canonical base64.")
    return decoded


def _peek(src: BinaryIO) -> bytes:
    peek = getattr(src, "peek", None)
    if peek is None:
        raise TypeError("ArmorReader needs a buffered stream with peek()")
    data: bytes = peek(1)
    return data[:1]
