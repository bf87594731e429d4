"""Cheap abuse of the tus endpoint (issue 13), against a real relay on 127.0.0.1.

Sources reach the relay over Tor, so there is no address to block: claims that
cost an attacker nothing (creates that never send a byte) must not lock real
sources out, and requests for uploads that do not exist must not cost memory.
"""

from __future__ import annotations

import asyncio
import http.client
import secrets
import time
from pathlib import Path

import aiohttp
import psutil
import pytest
from aiohttp import web

from relay.config import load_config
from relay.server.app import create_app
from relay.server.uploads import UPLOAD_STATE
from tests.support_server import RelayServer, new_relay, running_relay

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {"Content-Type": "application/offset+octet-stream"}
UNKNOWN_ID_REQUESTS = 20_000
WARM_UP_REQUESTS = 4_000
MAX_RSS_GROWTH_BYTES = 1536 * 1024
"""Before the fix, 20,000 such requests grew the server by about 4.5 MiB."""
TIME_LIMIT_SECONDS = 120.0


def _random_id() -> str:
    return secrets.token_hex(16)


def _unknown_id_request(connection: http.client.HTTPConnection, number: int) -> int:
    path = f"/api/v1/uploads/{_random_id()}"
    if number % 2:
        connection.request("DELETE", path, headers=TUS)
    else:
        headers = {**TUS, **OFFSET_STREAM, "Upload-Offset": "0"}
        connection.request("PATCH", path, body=b"x", headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def _send_unknown_id_requests(relay: RelayServer, count: int) -> None:
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        for number in range(count):
            assert time.monotonic() < deadline, "the requests took too long"
            assert _unknown_id_request(connection, number) == 404
    finally:
        connection.close()


@pytest.mark.slow
def test_requests_for_unknown_uploads_do_not_grow_the_server(tmp_path: Path) -> None:
    with running_relay(tmp_path / "relay") as relay:
        assert relay.proc is not None
        server = psutil.Process(relay.proc.pid)
        _send_unknown_id_requests(relay, WARM_UP_REQUESTS)  # allocator and caches settle
        before = server.memory_info().rss
        _send_unknown_id_requests(relay, UNKNOWN_ID_REQUESTS)
        growth = server.memory_info().rss - before
    print(f"RSS growth after {UNKNOWN_ID_REQUESTS} requests to unknown ids: {growth} bytes")
    assert growth < MAX_RSS_GROWTH_BYTES


async def _unknown_id_requests_in_process(config_dir: Path, count: int) -> web.Application:
    relay = new_relay(config_dir)
    app = create_app(load_config({}, relay.config_path))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}/api/v1/uploads/"
    try:
        async with aiohttp.ClientSession() as session:
            for number in range(count):
                if number % 2:
                    response = await session.delete(base + _random_id(), headers=TUS)
                else:
                    headers = {**TUS, **OFFSET_STREAM, "Upload-Offset": "0"}
                    response = await session.patch(base + _random_id(), data=b"x", headers=headers)
                async with response:
                    assert response.status == 404
            table_size = len(app[UPLOAD_STATE].locks)
    finally:
        await runner.cleanup()
    assert table_size == 0, f"{table_size} upload locks were left behind"
    return app


def test_requests_for_unknown_uploads_leave_no_lock_behind(tmp_path: Path) -> None:
    asyncio.run(_unknown_id_requests_in_process(tmp_path / "relay", 500))
