"""Cheap abuse of the tus endpoint (issue 13), against a real relay on 127.0.0.1.

Sources reach the relay over Tor, so there is no address to block: claims that
cost an attacker nothing (creates that never send a byte) must not lock real
sources out, and requests for uploads that do not exist must not cost memory.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import psutil
import pytest
from aiohttp import web
from tusclient import client as tus_client

from relay.config import load_config
from relay.server.app import create_app
from relay.server.upload_claims import UploadClaims
from relay.server.uploads import UPLOAD_STATE
from tests.support_server import RelayServer, SettingValue, new_relay, running_relay

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {"Content-Type": "application/offset+octet-stream"}
UNKNOWN_ID_REQUESTS = 20_000
WARM_UP_REQUESTS = 4_000
MAX_RSS_GROWTH_BYTES = 1536 * 1024
"""Before the fix, 20,000 such requests grew the server by about 4.5 MiB."""
TIME_LIMIT_SECONDS = 120.0
CLAIMS_OF_EACH_KIND = 1000
REAL_UPLOAD_BYTES = 50_000
REAL_UPLOADS_AFTER_ATTACK = 5


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


# --- claims that cost nothing ---------------------------------------------------


def _create(connection: http.client.HTTPConnection, length: int) -> tuple[int, str]:
    connection.request("POST", "/api/v1/uploads", headers={**TUS, "Upload-Length": str(length)})
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Location") or ""


def _claim_attack(relay: RelayServer, largest: int) -> dict[int, int]:
    """CLAIMS_OF_EACH_KIND creates with a large length (halved after each 507) and as
    many with length 1, none sending a byte; how many creates got each status."""
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        length = largest
        for _ in range(CLAIMS_OF_EACH_KIND):
            assert time.monotonic() < deadline, "the attack took too long"
            status, _ = _create(connection, length)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 507:
                length = max(1, length // 2)
        for _ in range(CLAIMS_OF_EACH_KIND):
            assert time.monotonic() < deadline, "the attack took too long"
            status, _ = _create(connection, 1)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        connection.close()
    return statuses


def _sealed_file(relay: RelayServer, folder: Path, size: int) -> Path:
    """An age file for this relay's reviewer, made by the stock ``age``."""
    plaintext = folder / "plain.bin"
    plaintext.write_bytes(os.urandom(size))
    sealed = folder / "sealed.age"
    subprocess.run(
        ["age", "-r", relay.recipient, "-o", str(sealed), str(plaintext)],
        check=True,
        timeout=60,
    )
    return sealed


def _tuspy_upload(relay: RelayServer, path: Path) -> str:
    """Create, send and commit ``path`` as tuspy does; the receipt."""
    with path.open("rb") as stream:
        uploader = tus_client.TusClient(relay.url + "/api/v1/uploads").uploader(
            file_stream=stream, chunk_size=16 * 1024
        )
        uploader.upload()
    assert uploader.request is not None
    headers = {k.lower(): v for k, v in uploader.request.response_headers.items()}
    return headers["tiprelay-receipt"]


def _attack_then_upload(tmp_path: Path, settings: Mapping[str, SettingValue]) -> None:
    with running_relay(tmp_path / "relay", settings) as relay:
        largest = int(settings.get("max_submission_bytes", 2 << 30))
        statuses = _claim_attack(relay, largest)
        sealed = _sealed_file(relay, tmp_path, REAL_UPLOAD_BYTES)
        receipts = set()
        # A flood that goes on while the sources upload does not stop them either.
        with ThreadPoolExecutor(max_workers=1) as flood:
            flooding = flood.submit(_claim_attack, relay, largest)
            for _ in range(REAL_UPLOADS_AFTER_ATTACK):
                receipt = _tuspy_upload(relay, sealed)
                stored = relay.data_dir / "blobs" / f"{receipt}.age"
                assert stored.read_bytes() == sealed.read_bytes()
                receipts.add(receipt)
            flood_statuses = flooding.result(timeout=TIME_LIMIT_SECONDS)
    print(
        f"claim attack statuses: {statuses}, then during the uploads: {flood_statuses}; "
        f"{len(receipts)} of {REAL_UPLOADS_AFTER_ATTACK} real uploads committed"
    )
    assert statuses.get(201, 0) > 0
    assert len(receipts) == REAL_UPLOADS_AFTER_ATTACK


@pytest.mark.slow
def test_claims_that_send_nothing_cannot_lock_out_a_real_upload(tmp_path: Path) -> None:
    # A small disk margin above the reserve and few slots: before the fix, the
    # large claims took the disk after a few creates and the tiny ones every slot.
    # (1 GiB: other programs on this machine may write a few hundred MiB meanwhile.)
    free = shutil.disk_usage(tmp_path).free
    settings: dict[str, SettingValue] = {
        "disk_reserve_bytes": free - 1024 * 1024 * 1024,
        "max_submission_bytes": 1 << 30,
        "max_open_uploads": 100,
    }
    _attack_then_upload(tmp_path, settings)


@pytest.mark.slow
def test_claims_that_send_nothing_cannot_lock_out_a_real_upload_with_defaults(
    tmp_path: Path,
) -> None:
    _attack_then_upload(tmp_path, {})


# --- the policy, step by step -------------------------------------------------------


class _Clock:
    """A monotonic clock that the test moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _never_busy(_: str) -> bool:
    return False


_NO_RATE = {"start_seconds": 60, "idle_seconds": 30, "min_bytes_per_second": 0}


def test_unstarted_uploads_go_first_then_paused_ones_and_progressing_ones_never() -> None:
    clock = _Clock()
    claims = UploadClaims(**_NO_RATE, disk_claim_bytes=10**9, clock=clock)
    claims.track("paused", 100, 0)
    claims.record_progress("paused", 10)
    clock.now += 1
    claims.track("old-claim", 100, 0)
    clock.now += 1
    claims.track("new-claim", 100, 0)
    clock.now += 40  # "paused" is now idle longer than idle_seconds
    claims.track("progressing", 100, 0)
    claims.record_progress("progressing", 5)
    assert claims.eviction_order(_never_busy) == ["old-claim", "new-claim", "paused"]
    assert not claims.may_evict("progressing", _never_busy)
    claims.record_progress("old-claim", 50)  # it started after the order was made
    assert not claims.may_evict("old-claim", _never_busy)
    assert claims.may_evict("new-claim", _never_busy) and claims.may_evict("paused", _never_busy)
    assert claims.eviction_order(lambda upload_id: upload_id == "old-claim") == [
        "new-claim",
        "paused",
    ]


def test_only_progressing_uploads_reserve_disk_and_together_at_most_the_budget() -> None:
    clock = _Clock()
    claims = UploadClaims(**_NO_RATE, disk_claim_bytes=150, clock=clock)
    claims.track("claim", 10**9, 0)
    assert claims.reserved_bytes(_never_busy) == 0
    claims.track("a", 100, 0)
    claims.record_progress("a", 40)
    assert claims.reserved_bytes(_never_busy) == 60
    claims.track("b", 200, 0)
    claims.record_progress("b", 1)
    assert claims.reserved_bytes(_never_busy) == 150
    clock.now += 31
    assert claims.reserved_bytes(_never_busy) == 0
    assert claims.reserved_bytes(lambda upload_id: upload_id == "a") == 60


def test_a_byte_now_and_then_does_not_keep_an_upload_progressing() -> None:
    clock = _Clock()
    claims = UploadClaims(
        start_seconds=60,
        idle_seconds=30,
        min_bytes_per_second=10,
        disk_claim_bytes=10**9,
        clock=clock,
    )
    claims.track("trickle", 1000, 0)
    claims.record_progress("trickle", 100)  # enough for 10 seconds at 10 bytes/s
    clock.now += 9
    assert claims.eviction_order(_never_busy) == []
    assert claims.reserved_bytes(_never_busy) == 900
    clock.now += 2
    claims.record_progress("trickle", 101)  # a recent byte, but 101 bytes in 11 s
    assert claims.eviction_order(_never_busy) == ["trickle"]
    assert claims.reserved_bytes(_never_busy) == 0


def test_claims_that_never_start_are_named_for_deletion_and_the_store_is_followed() -> None:
    clock = _Clock()
    claims = UploadClaims(**_NO_RATE, disk_claim_bytes=0, clock=clock)
    claims.track("claim", 10, 0)
    claims.track("started", 10, 0)
    claims.record_progress("started", 1)
    clock.now += 61
    assert claims.never_started(_never_busy) == ["claim"]
    claims.keep_only([("started", 10, 3), ("found-at-start", 10, 0)])
    assert "claim" not in claims and len(claims) == 2
    assert claims.never_started(_never_busy) == []


# --- the policy on a real relay ---------------------------------------------------


def _request(
    relay: RelayServer, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def _new_upload(relay: RelayServer, length: int) -> str:
    response = _request(relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": str(length)})
    assert response.status == 201
    return response.getheader("Location") or ""


def _send(relay: RelayServer, location: str, offset: int, body: bytes) -> http.client.HTTPResponse:
    headers = {**TUS, **OFFSET_STREAM, "Upload-Offset": str(offset)}
    return _request(relay, "PATCH", location, headers, body)


def _head_status(relay: RelayServer, location: str) -> int:
    return _request(relay, "HEAD", location, TUS).status


def test_a_paused_upload_resumes_while_unstarted_claims_give_way(tmp_path: Path) -> None:
    settings = {"max_open_uploads": 2, "upload_idle_seconds": 1}
    with running_relay(tmp_path / "relay", settings) as relay:
        sealed = _sealed_file(relay, tmp_path, 2000).read_bytes()
        paused = _new_upload(relay, len(sealed))
        assert _send(relay, paused, 0, sealed[:100]).status == 204
        time.sleep(1.5)  # the circuit dropped: idle longer than upload_idle_seconds
        claim = _new_upload(relay, 10)
        _new_upload(relay, 10)  # no slot free: the claim gives way, not the paused upload
        assert _head_status(relay, claim) == 404
        assert _head_status(relay, paused) == 200
        finished = _send(relay, paused, 100, sealed[100:])
        assert finished.status == 204
        receipt = finished.getheader("Tiprelay-Receipt") or ""
        assert (relay.data_dir / "blobs" / f"{receipt}.age").read_bytes() == sealed


def test_under_pressure_a_paused_upload_gives_way_but_one_receiving_bytes_does_not(
    tmp_path: Path,
) -> None:
    settings = {"max_open_uploads": 1, "upload_idle_seconds": 2}
    with running_relay(tmp_path / "relay", settings) as relay:
        paused = _new_upload(relay, 1 << 20)
        assert _send(relay, paused, 0, b"x" * 10).status == 204
        time.sleep(2.5)
        receiving = _new_upload(relay, 1 << 20)
        assert _head_status(relay, paused) == 404
        # 64 KiB at once: a rate far above upload_min_bytes_per_second.
        assert _send(relay, receiving, 0, b"x" * 65536).status == 204
        refused = _request(relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": "10"})
        assert refused.status == 503
        assert _head_status(relay, receiving) == 200


def test_a_claim_that_never_receives_a_byte_is_deleted_soon(tmp_path: Path) -> None:
    settings = {"upload_start_seconds": 1}
    with running_relay(tmp_path / "relay", settings) as relay:
        claim = _new_upload(relay, 1000)
        started = _new_upload(relay, 1000)
        assert _send(relay, started, 0, b"x" * 10).status == 204
        deadline = time.monotonic() + 10
        while _head_status(relay, claim) != 404:
            assert time.monotonic() < deadline, "the unstarted claim was never deleted"
            time.sleep(0.2)
        assert _head_status(relay, started) == 200
        parts = {path.stem for path in (relay.data_dir / "uploads").iterdir()}
        assert parts == {started.rsplit("/", 1)[1]}
