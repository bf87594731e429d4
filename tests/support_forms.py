"""Sending the no-JS form the way a browser does, over a raw socket.

A browser encodes ``multipart/form-data`` with the file name as raw UTF-8 in
``filename="..."`` (``"`` as ``%22``, line breaks as ``%0D%0A``) and sends a
``Content-Length``. Building the body here, rather than with an HTTP client
library, lets tests send exactly that, and also what no browser sends:
truncated bodies, wrong lengths, stalls, hostile headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

BOUNDARY_PREFIX = "----TiprelayTestBoundary"
_CHUNK = 256 * 1024


@dataclass
class FilePart:
    """An attachment: its name as the browser would send it, and its bytes."""

    name: str
    data: bytes


@dataclass
class Response:
    """An HTTP response as read from the socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Form:
    """The fields of one submission, in the order a browser sends them."""

    message: str | bytes | None = ""
    files: Sequence[FilePart] = ()
    lang: str | None = None
    extra_parts: Sequence[bytes] = ()
    boundary: str = field(default_factory=lambda: BOUNDARY_PREFIX + secrets.token_hex(8))
    empty_file_input: bool = False
    """Send the empty part a browser sends for a file input left blank."""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _part_head(self, disposition: str, content_type: str | None = None) -> bytes:
        head = f"--{self.boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        return (head + "\r\n").encode("utf-8", "surrogateescape")

    def pieces(self) -> Iterator[bytes]:
        """The body, piece by piece (attachment data in 256 KiB slices)."""
        if self.lang is not None:
            yield self._part_head('name="lang"') + self.lang.encode() + b"\r\n"
        if self.message is not None:
            text = self.message if isinstance(self.message, bytes) else self.message.encode()
            yield self._part_head('name="message"') + text + b"\r\n"
        yield from self.extra_parts
        for file in self.files:
            yield self._part_head(
                f'name="attachment"; filename="{browser_escape(file.name)}"',
                "application/octet-stream",
            )
            view = memoryview(file.data)
            for start in range(0, len(view), _CHUNK):
                yield bytes(view[start : start + _CHUNK])
            yield b"\r\n"
        if self.empty_file_input:
            yield self._part_head(
                'name="attachment"; filename=""', "application/octet-stream"
            ) + b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    def body(self) -> bytes:
        return b"".join(self.pieces())

    def length(self) -> int:
        return sum(len(piece) for piece in self.pieces())


def browser_escape(name: str) -> str:
    """What browsers do to a file name inside ``filename="..."`` (HTML spec)."""
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


async def send_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes] | AsyncIterator[bytes] = (),
    *,
    read_timeout: float = 60.0,
    close_after_body: bool = False,
) -> Response | None:
    """Send one HTTP/1.1 request as given and read the answer (None if the
    server closed without one). Headers are sent exactly as passed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(head.encode("utf-8", "surrogateescape") + b"\r\n")
        try:
            if isinstance(body, AsyncIterator):
                async for piece in body:
                    writer.write(piece)
                    await writer.drain()
            else:
                for piece in body:
                    writer.write(piece)
                    await writer.drain()
        except ConnectionError:
            pass  # the server answered early and closed: read that answer
        if close_after_body:
            writer.close()
            return None
        return await asyncio.wait_for(_read_response(reader), read_timeout)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> Response | None:
    try:
        status_line = await reader.readline()
    except ConnectionError:
        return None
    if not status_line:
        return None
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Response(status, headers, body)


async def submit_form(
    port: int,
    form: Form,
    *,
    path: str = "/submit",
    extra_headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Response:
    """POST the form like a browser (Content-Length), or chunked when asked."""
    headers = {"Content-Type": form.content_type}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        pieces: Iterable[bytes] = _chunked(form.pieces())
    else:
        headers["Content-Length"] = str(form.length())
        pieces = form.pieces()
    headers.update(extra_headers or {})
    response = await send_request(port, "POST", path, headers, pieces)
    assert response is not None, "the relay closed the connection without an answer"
    return response


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        if piece:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def run(coroutine: object) -> object:
    """``asyncio.run`` for tests that are plain functions."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def text_fields_multipart(fields: list[tuple[str, str]]) -> tuple[dict[str, str], bytes]:
    """A ``multipart/form-data`` body of text fields only, and its headers."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(body))}  # fmt: skip
    return headers, body
