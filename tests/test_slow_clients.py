"""Slow and silent senders cannot keep real no-JS submissions out.

Every relay here is a real ``tiprelay serve`` on 127.0.0.1; the slow clients
are raw sockets that send a form's start and then a byte a second, or only
their headers, or not even those. The pace limits are set small so that each
test takes seconds; config/relay.toml argues why the defaults let a real
20 KB/s Tor upload through.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey
from tests.support_conversation import conversation_relay
from tests.support_forms import FilePart, Form, Response, random_bytes, submit_form
from tests.support_server import RelayServer, running_relay

PACE_SETTINGS = {
    "default_language": "en",
    "submit_idle_timeout_seconds": 2,
    "submit_rate_grace_seconds": 2,
    "submit_min_bytes_per_second": "8 KiB",
    "connection_idle_timeout_seconds": 3,
}
SLOW_CLIENT_MAX_SECONDS = 15.0
"""No slow client in these tests runs longer than this, whatever the relay does."""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """Default slots (16), small pace limits."""
    with running_relay(tmp_path_factory.mktemp("pace") / "relay", PACE_SETTINGS) as server:
        yield server


# --- slow clients -----------------------------------------------------------------


@dataclass
class SlowOutcome:
    """What a slow client saw: the status the relay answered (None: closed without
    one) and how long after connecting."""

    status: int | None
    seconds: float


def form_head(port: int, form: Form) -> bytes:
    """Request line and headers of ``form`` as a browser sends them."""
    return (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {form.content_type}\r\nContent-Length: {form.length()}\r\n\r\n"
    ).encode()


async def _read_status(reader: asyncio.StreamReader) -> int | None:
    with contextlib.suppress(ConnectionError):
        line = await reader.readline()
        if line.startswith(b"HTTP/"):
            return int(line.split()[1])
    return None


async def slow_client(
    port: int, first_bytes: bytes, *, bytes_per_second: int, max_seconds: float
) -> SlowOutcome:
    """Send ``first_bytes``, then ``bytes_per_second`` (0: nothing) once a second,
    until the relay answers or closes, or ``max_seconds`` pass."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_read_status(reader))
    try:
        writer.write(first_bytes)
        await writer.drain()
        for _ in range(int(max_seconds) + 1):
            done, _pending = await asyncio.wait({answer}, timeout=1.0)
            if done or loop.time() - started > max_seconds:
                break
            if bytes_per_second:
                try:
                    writer.write(b"x" * bytes_per_second)
                    await writer.drain()
                except ConnectionError:
                    break
        remaining = max(0.1, max_seconds - (loop.time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answer), remaining)
        status = answer.result() if answer.done() else None
        return SlowOutcome(status, loop.time() - started)
    finally:
        answer.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def trickler(port: int, max_seconds: float = SLOW_CLIENT_MAX_SECONDS) -> asyncio.Task[SlowOutcome]:
    """Headers and the start of a 100 KB form, then one byte a second."""
    form = Form(message="x" * 100_000)
    first_bytes = form_head(port, form) + form.body()[:150]
    return asyncio.create_task(
        slow_client(port, first_bytes, bytes_per_second=1, max_seconds=max_seconds)
    )


def silent_sender(
    port: int, max_seconds: float = SLOW_CLIENT_MAX_SECONDS
) -> asyncio.Task[SlowOutcome]:
    """Headers of a form, then nothing."""
    form = Form(message="x" * 100_000)
    return asyncio.create_task(
        slow_client(port, form_head(port, form), bytes_per_second=0, max_seconds=max_seconds)
    )


async def finish(tasks: list[asyncio.Task[SlowOutcome]]) -> list[SlowOutcome]:
    """Every slow client's outcome; each closes its socket even when another fails."""
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, SlowOutcome)]


# --- reading back what was stored -----------------------------------------------------


def stored_messages(relay: RelayServer) -> list[str]:
    """The message.txt of every stored blob, decrypted with the stock ``age``."""
    messages = []
    for blob in relay.blob_paths():
        plaintext = relay.decrypt_with_stock_age(blob)
        with tarfile.open(fileobj=io.BytesIO(plaintext)) as archive:
            member = archive.extractfile("message.txt")
            assert member is not None
            messages.append(member.read().decode())
    return messages


def stored_file(relay: RelayServer, message: str, name: str) -> bytes:
    """The attachment ``name`` of the stored submission whose message is ``message``."""
    for blob in relay.blob_paths():
        with tarfile.open(fileobj=io.BytesIO(relay.decrypt_with_stock_age(blob))) as archive:
            text = archive.extractfile("message.txt")
            if text is not None and text.read().decode() == message:
                member = archive.extractfile(f"files/{name}")
                assert member is not None
                return member.read()
    raise AssertionError(f"no stored submission says {message!r}")


def daily_count(relay: RelayServer, reason: str) -> int:
    """The activity total for ``reason`` the relay logged at shutdown."""
    pattern = re.compile(r'"count": (\d+).*"reason": "' + reason + '"|"reason": "' + reason
                         + r'".*"count": (\d+)')
    total = 0
    for line in relay.log_text().splitlines():
        if "activity.daily" in line and (match := pattern.search(line)):
            total += int(match.group(1) or match.group(2))
    return total


# --- the tests ------------------------------------------------------------------------


async def storm_and_submit(
    port: int, tricklers: int, silent: int, real: int
) -> tuple[list[Response], int, list[SlowOutcome]]:
    """Open the slow connections, then send ``real`` forms at once while they are open.

    Returns the real answers, how many slow connections were still open when
    the last real answer came, and the slow connections' outcomes."""
    slow = [trickler(port) for _ in range(tricklers)] + [silent_sender(port) for _ in range(silent)]
    try:
        await asyncio.sleep(0.5)  # every slow connection is in, its headers read
        forms = [
            Form(message=f"real tip {n}", files=[FilePart(f"evidence-{n}.bin", b"e" * 5000)])
            for n in range(real)
        ]
        answers = await asyncio.gather(*(submit_form(port, form) for form in forms))
        still_open = sum(not task.done() for task in slow)
    finally:
        outcomes = await finish(slow)
    return list(answers), still_open, outcomes


def test_forty_slow_connections_do_not_stop_real_no_js_submissions(relay: RelayServer) -> None:
    before = set(stored_messages(relay))
    answers, still_open, outcomes = asyncio.run(
        storm_and_submit(relay.port, tricklers=30, silent=10, real=3)
    )
    assert still_open == 40, "the real submissions were made while every slow one was open"
    assert [answer.status for answer in answers] == [303, 303, 303]
    assert set(stored_messages(relay)) - before == {"real tip 0", "real tip 1", "real tip 2"}
    assert stored_file(relay, "real tip 1", "evidence-1.bin") == b"e" * 5000
    # Every slow one was cut off with a clear answer, within the limits.
    assert {outcome.status for outcome in outcomes} == {408}
    assert max(outcome.seconds for outcome in outcomes) < 2 + 3


def test_a_20_kb_per_second_upload_longer_than_the_grace_period_is_stored(
    relay: RelayServer,
) -> None:
    data = random_bytes(60_000)
    form = Form(message="steady", files=[FilePart("scan.bin", data)])
    body = form.body()

    async def at_20_kb_per_second() -> Response | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        try:
            writer.write(form_head(relay.port, form))
            for start in range(0, len(body), 2000):  # 2 KB every 0.1 s
                writer.write(body[start : start + 2000])
                await writer.drain()
                await asyncio.sleep(0.1)
            status = await asyncio.wait_for(_read_status(reader), 10)
            return Response(status or 0, {}, b"")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    started = time.monotonic()
    response = asyncio.run(at_20_kb_per_second())
    assert time.monotonic() - started > PACE_SETTINGS["submit_rate_grace_seconds"]  # type: ignore[operator]
    assert response is not None and response.status == 303
    assert stored_file(relay, "steady", "scan.bin") == data


def test_a_connection_that_sends_no_request_is_closed(relay: RelayServer) -> None:
    async def partial_headers() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        started = time.monotonic()
        try:
            writer.write(b"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), SLOW_CLIENT_MAX_SECONDS)
            return rest, time.monotonic() - started
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    rest, seconds = asyncio.run(partial_headers())
    assert rest == b""
    assert 3 - 0.5 < seconds < 3 + 2


def test_a_trickling_client_is_cut_off_and_holds_no_slot(tmp_path: Path) -> None:
    settings = {**PACE_SETTINGS, "max_concurrent_submissions": 1}
    relay_dir = tmp_path / "relay"
    with running_relay(relay_dir, settings) as relay:

        async def scenario() -> tuple[list[SlowOutcome], Response, Response]:
            slow = [trickler(relay.port), silent_sender(relay.port)]
            try:
                await asyncio.sleep(0.5)
                during = await submit_form(relay.port, Form(message="during"))
            finally:
                outcomes = await finish(slow)
            after = await submit_form(relay.port, Form(message="after"))
            return outcomes, during, after

        outcomes, during, after = asyncio.run(scenario())
        assert during.status == 303 and after.status == 303
        assert sorted(stored_messages(relay)) == ["after", "during"]
        # Cut off at the grace period (slow) and the idle timeout (silent), not before.
        for outcome in outcomes:
            assert outcome.status == 408
            assert 2 - 0.5 < outcome.seconds < 2 + 3
        assert list((relay.data_dir / "tmp").iterdir()) == []  # nothing half-written
    # Counted for the daily totals only; no address in the log.
    assert daily_count(relay, "submission_refused_slow") == 1
    assert daily_count(relay, "submission_refused_idle") == 1
    assert "127.0.0.1" not in relay.log_text()


def test_forms_held_in_memory_are_capped_and_given_back_when_cut_off(tmp_path: Path) -> None:
    settings = {
        **PACE_SETTINGS,
        "max_receiving_memory_bytes": "4 MiB",
        "max_message_bytes": "3 MiB",
    }
    with running_relay(tmp_path / "relay", settings) as relay:

        async def scenario() -> tuple[SlowOutcome, Response, Response, Response]:
            big = Form(message="b" * 2_900_000)
            stalled = asyncio.create_task(
                slow_client(
                    relay.port,
                    form_head(relay.port, big) + big.body()[:2_850_000],
                    bytes_per_second=0,
                    max_seconds=SLOW_CLIENT_MAX_SECONDS,
                )
            )
            try:
                await asyncio.sleep(0.7)  # it holds about 2.85 MB of the 4 MiB
                too_much = await submit_form(relay.port, Form(message="m" * 2_000_000))
                small = await submit_form(relay.port, Form(message="small"))
            finally:
                (cut_off,) = await finish([stalled])
            given_back = await submit_form(relay.port, Form(message="g" * 2_000_000))
            return cut_off, too_much, small, given_back

        cut_off, too_much, small, given_back = asyncio.run(scenario())
        assert cut_off.status == 408
        assert too_much.status == 503
        assert small.status == 303 and given_back.status == 303
        assert sorted(len(message) for message in stored_messages(relay)) == [5, 2_000_000]
    assert daily_count(relay, "submission_refused_memory") == 1


def small_body_head(port: int, method: str, path: str, content_type: str, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.slow  # three slow clients held up to the relay's 2 s deadline, one relay
def test_small_bodies_that_trickle_in_are_cut_off_on_every_anonymous_route(tmp_path: Path) -> None:
    # The reply API's JSON, the reply page's forms and the signed reviewer API
    # read their small bodies whole: a byte a second must not hold a handler.
    routes = [
        ("POST", "/api/v1/replies/index", "application/json"),
        ("POST", "/replies", "application/x-www-form-urlencoded"),
        ("GET", "/api/v1/submissions", "application/json"),
    ]
    with conversation_relay(tmp_path / "relay", PACE_SETTINGS, SigningKey.generate()) as relay:

        async def storm() -> list[SlowOutcome]:
            tasks = []
            for method, path, kind in routes:
                head = small_body_head(relay.port, method, path, kind, 900)
                tasks.append(asyncio.create_task(slow_client(
                    relay.port, head + b"{", bytes_per_second=1,
                    max_seconds=SLOW_CLIENT_MAX_SECONDS,
                )))  # fmt: skip
            return await finish(tasks)

        outcomes = asyncio.run(storm())
    # Cut off at the 2 s deadline (submit_idle_timeout_seconds), well before 15 s:
    # 408 on the source's routes, the reviewer API's one 401 for every failure.
    assert [outcome.status for outcome in outcomes] == [408, 408, 401], outcomes
    assert all(outcome.seconds < 8 for outcome in outcomes), outcomes
