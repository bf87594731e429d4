"""Reading a small request body whole: bounded in bytes and in time.

The reviewer API's signed bodies, the source's reply API (JSON) and the reply
page's forms are a few KB at most. An anonymous client must not hold a handler
and a socket for long by sending such a body a byte at a time, and aiohttp's
own timeouts stop once a handler reads the body: so the whole read has a
deadline (``submit_idle_timeout_seconds``, the time the relay waits for a
silent sender anywhere), and ``TimeoutError`` ends it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from relay.server.appkeys import CONFIG


async def read_small_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than ``limit`` bytes.

    Raises TimeoutError when it does not arrive within the deadline.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    if not request.can_read_body:
        return b""
    body = bytearray()
    async with asyncio.timeout(request.app[CONFIG].submit_idle_timeout_seconds):
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > limit:
                return None
    return bytes(body)
