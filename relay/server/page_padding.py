"""The no-JS reply pages, padded so that their size does not tell whether replies exist.

A network observer of a source (even over Tor: cells are counted) sees how
many bytes each answer has. Unpadded, the page of ``POST /replies`` was 2,369
bytes with no reply and 2,836 with one short reply (English), so its size told
whether the team had answered. Every HTML answer under ``/replies`` (the
replies, the page after a delete, and every error or busy page a reader of
replies can get: a mistyped codename, a file that is gone, a malformed form,
no free derivation slot) is therefore padded after rendering, with one HTML
comment after ``</html>``, to ``REPLY_PAGE_FLOOR_BYTES``; a page larger than
that (long replies, many files) to its Padmé length (``relay.crypto.padding``).

Pages are never compressed (tests/test_page_weight.py), so these are the bytes
on the wire. Attachments downloaded from ``/replies/attachment`` are files, not
pages, and keep their size; docs/security.md says what sizes still show.
"""

from __future__ import annotations

from aiohttp import web

from relay.crypto.padding import padme_length
from relay.server.middlewares import Handler

REPLY_PAGE_FLOOR_BYTES = 16 * 1024
"""Every reply-reading page has at least this many bytes: the page with no
reply, with a full ring of 16 short replies, and every error page all fit."""

PADDED_PATH = "/replies"
"""This path and everything under it (relay.server.reply_page's routes)."""

_OPEN, _CLOSE = b"\n<!--", b"-->\n"


def padded_page_length(length: int) -> int:
    """The size a page of ``length`` bytes is padded to (room for the comment included)."""
    return max(REPLY_PAGE_FLOOR_BYTES, padme_length(length + len(_OPEN) + len(_CLOSE)))


def pad_page(body: bytes) -> bytes:
    """``body`` followed by a comment of spaces, to ``padded_page_length(len(body))`` bytes."""
    fill = padded_page_length(len(body)) - len(body) - len(_OPEN) - len(_CLOSE)
    return body + _OPEN + b" " * fill + _CLOSE


def is_padded_path(path: str) -> bool:
    return path == PADDED_PATH or path.startswith(PADDED_PATH + "/")


@web.middleware
async def pad_reply_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pad every HTML answer under ``/replies``, error pages included (this
    middleware runs outside ``error_pages``, so it sees the rendered refusal)."""
    response = await handler(request)
    if (
        is_padded_path(request.path)
        and isinstance(response, web.Response)
        and response.content_type == "text/html"
        and isinstance(response.body, bytes)
    ):
        response.body = pad_page(response.body)
    return response
