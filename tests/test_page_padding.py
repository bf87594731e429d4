"""The padding of the no-JS reply pages (relay.server.page_padding), in process.

tests/test_conversation_pages.py measures the real pages over HTTP; here, what
is hard to provoke there: the "relay busy" page a reader gets when no
derivation slot frees up, and what is left unpadded (other pages, downloads).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay.crypto.padding import padme_length
from relay.server.middlewares import Handler, error_pages
from relay.server.page_padding import (
    REPLY_PAGE_FLOOR_BYTES,
    pad_page,
    pad_reply_pages,
    padded_page_length,
)
from relay.server.problems import RELAY_BUSY, SourceProblem
from relay.server.rendering import LANGUAGE


def test_pages_are_padded_to_the_floor_then_to_their_padme_length() -> None:
    assert len(pad_page(b"<html></html>")) == REPLY_PAGE_FLOOR_BYTES
    assert len(pad_page(b"x" * (REPLY_PAGE_FLOOR_BYTES - 9))) == REPLY_PAGE_FLOOR_BYTES
    # No room left for the comment: the next size up.
    assert len(pad_page(b"x" * (REPLY_PAGE_FLOOR_BYTES - 8))) > REPLY_PAGE_FLOOR_BYTES
    for length in (20_000, 100_000, 1_000_000):
        padded = pad_page(b"y" * length)
        assert len(padded) == padded_page_length(length) == padme_length(len(padded))
        assert padded.startswith(b"y" * length) and padded.endswith(b" -->\n")


@web.middleware
async def english(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[LANGUAGE] = "en"
    return await handler(request)


async def busy(request: web.Request) -> web.Response:
    raise SourceProblem(RELAY_BUSY)


async def download(request: web.Request) -> web.Response:
    return web.Response(body=b"FILE", content_type="application/octet-stream")


async def answers() -> dict[str, tuple[int, int]]:
    app = web.Application(middlewares=[english, pad_reply_pages, error_pages])
    app.router.add_post("/replies", busy)
    app.router.add_post("/replies/attachment", download)
    app.router.add_post("/submit", busy)
    async with TestClient(TestServer(app)) as client:
        found: dict[str, tuple[int, int]] = {}
        for path in ("/replies", "/replies/attachment", "/submit"):
            answer = await client.post(path)
            found[path] = (answer.status, len(await answer.read()))
        return found


def test_the_busy_page_is_padded_under_replies_and_nothing_else_is() -> None:
    found = asyncio.run(answers())
    assert found["/replies"] == (503, REPLY_PAGE_FLOOR_BYTES)  # no derivation slot free
    assert found["/replies/attachment"] == (200, 4)  # a file keeps its size
    assert found["/submit"][0] == 503 and found["/submit"][1] < REPLY_PAGE_FLOOR_BYTES
