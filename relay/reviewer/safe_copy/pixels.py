"""The strict reader of the pixel stream the sandboxed converter writes.

This is the one piece that reads what hostile code produced, outside the
sandbox, so it reads as little and as plainly as it can: Dangerzone's stream
is a big-endian 2-byte page count, then per page a 2-byte width, a 2-byte
height and width × height × 3 bytes of RGB. Every number is checked against
the limits before a byte more is read, the whole stream's size is bounded, and
nothing may follow the last page. A bug in LibreOffice or MuPDF that the
document triggers can only change pixels; a bug here could do more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from relay.reviewer.safe_copy.sandbox import Limits

INT_BYTES = 2
CHANNELS = 3  # RGB, no alpha


class PixelStreamError(ValueError):
    """The stream is not what the converter may write: too big, cut short, or malformed."""


class PixelStreamCut(PixelStreamError):
    """The stream ends early: the converter failed or was stopped (its status says why)."""


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    width: int
    height: int
    rgb: bytes


def _read_exact(stream: IO[bytes], size: int, what: str) -> bytes:
    chunks = []
    left = size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise PixelStreamCut(f"the converter's output ends inside {what}")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_int(stream: IO[bytes], what: str) -> int:
    return int.from_bytes(_read_exact(stream, INT_BYTES, what), "big", signed=False)


def read_pages(
    stream: IO[bytes], limits: Limits, on_count: Callable[[int], None] | None = None
) -> Iterator[Page]:
    """Yield each page of the stream, checked; raise PixelStreamError at the first fault."""
    count = _read_int(stream, "the page count")
    if count < 1:
        raise PixelStreamError("the document has no pages")
    if count > limits.max_pages:
        raise PixelStreamError(
            f"the document has {count} pages; safe copies stop at {limits.max_pages}"
        )
    if on_count is not None:
        on_count(count)
    total = 0
    for number in range(1, count + 1):
        width = _read_int(stream, f"page {number}'s width")
        height = _read_int(stream, f"page {number}'s height")
        if not (1 <= width <= limits.max_width and 1 <= height <= limits.max_height):
            raise PixelStreamError(
                f"page {number} is {width} × {height} pixels; at most "
                f"{limits.max_width} × {limits.max_height}"
            )
        size = width * height * CHANNELS
        total += size
        if total > limits.max_stream:
            raise PixelStreamError(
                f"the pages add up to more than {limits.max_stream // (1 << 20)} MiB of pixels"
            )
        yield Page(number, width, height, _read_exact(stream, size, f"page {number}'s pixels"))
    if stream.read(1):
        raise PixelStreamError("the converter wrote more than its pages")
