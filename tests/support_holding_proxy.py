"""A recording HTTP proxy in front of a relay that holds the browser bundle back.

A source on a slow Tor circuit sees the page seconds before its script runs.
``holding_proxy(relay.url)`` stands for that circuit, for any browser: it
forwards every request to the relay, records each one (method, path and query,
headers, whole body) as it arrives, and answers ``/static/dist/app.js`` only
once the test calls ``release()``. Until then no page script can have run, so
what the browser sent meanwhile is what a quick click or Enter sends before the
script takes over. No timing is involved: the hold lasts until released.

    with holding_proxy(relay.url) as proxy:
        page.goto(proxy.url + "/?lang=en", wait_until="commit")
        ...                   # type, click, press Enter
        proxy.release()       # the bundle goes out now
        assert not [r for r in proxy.requests if b"secret" in r.body]
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.support_server import free_port

HELD_PATH = "/static/dist/app.js"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "host",
    "te",
    "trailer",
    "proxy-connection",
}


@dataclass(frozen=True)
class Recorded:
    """One request as the proxy received it."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes
    before_release: bool
    """Whether it arrived while the bundle was still held (no page script had run)."""

    def shown_to_network(self) -> bytes:
        """What the request showed the wire: request line, headers and body."""
        head = f"{self.method} {self.path_qs}\n" + "".join(
            f"{name}: {value}\n" for name, value in self.headers.items()
        )
        return head.encode() + self.body


class HoldingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def held_requests(self) -> int:
        """How many bundle requests arrived while it was held."""
        held = [r for r in self.snapshot() if r.path_qs.startswith(HELD_PATH)]
        return sum(1 for r in held if r.before_release)

    def snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def release(self) -> None:
        """Let the bundle go out, now and from now on."""
        self._released.set()
        assert self._loop is not None and self._release_event is not None
        self._loop.call_soon_threadsafe(self._release_event.set)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the holding proxy did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._release_event = asyncio.Event()
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            self._session = session
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", self._forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Recorded(
            request.method,
            request.path_qs,
            dict(request.headers),
            body,
            before_release=not self._released.is_set(),
        )
        with self._lock:
            self.requests.append(record)
        if request.path == HELD_PATH:
            assert self._release_event is not None
            await self._release_event.wait()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            out_headers = {
                k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            return web.Response(status=answer.status, headers=out_headers, body=payload)


@contextlib.contextmanager
def holding_proxy(upstream: str) -> Iterator[HoldingProxy]:
    """A started proxy to ``upstream`` that holds the bundle until ``release()``."""
    proxy = HoldingProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.release()
        proxy.stop()
