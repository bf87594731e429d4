"""A flood at every codename endpoint cannot starve the no-JS path (issue 20, part 1).

A real ``tiprelay serve`` with its default derivation limits (one at a time, four
waiting, each at most 0.8 s) and a conversation salt. The flood: 40 anonymous
requests a second, each with a fresh random codename, over ``POST /replies``,
``/replies/attachment``, ``/replies/delete`` and ``/submit``, half of them
hanging up at once (tests/support_flood.py; bench/derivation_flood.py runs it
for 60 s and prints the figures). Beside it, real sources send no-JS tips with
the form's codename and without one, and read replies.

Bounds are generous for a loaded 2-core machine: a tip within 5 s (without the
change, the tips with a codename queued behind the flood's derivations for tens
of seconds), a busy page within 3 s (it comes after at most the 0.8 s wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from relay.config import load_config
from relay.conversation.codename import generate_codename
from relay.crypto.signing import SigningKey
from relay.log import COUNT_BUCKETS
from relay.server.appkeys import CONFIG, RING_READ_SLOTS
from relay.server.codenames import RING_READS_AT_ONCE, ring_reading
from relay.server.derivation_gate import PRESSURE_THRESHOLD, DerivationGate
from relay.server.problems import SourceProblem
from tests import support_logcapture
from tests.support_conversation import conversation_relay, keys_for, put_reply, sealed_reply
from tests.support_flood import (
    CpuMeter,
    flood,
    real_read,
    send_request,
    stored_messages,
    urlencoded,
)
from tests.support_logcapture import CapturedLog
from tests.support_server import RelayServer

FLOOD_SECONDS = 10.0
FLOOD_RATE = 40.0
TIP_BOUND_SECONDS = 5.0
READ_BOUND_SECONDS = 5.0
BUSY_BOUND_SECONDS = 3.0
BUSY_TITLES = {
    "en": "The relay is busy",
    "ru": "Сервер сейчас перегружен",
    "uk": "Сервер зараз перевантажений",
}


@pytest.fixture
def api_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def relay(tmp_path: Path, api_key: SigningKey) -> Iterator[RelayServer]:
    with conversation_relay(tmp_path / "relay", {}, api_key) as server:
        yield server


def relay_events(relay: RelayServer, event: str) -> list[dict[str, object]]:
    events = []
    for line in relay.log_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                events.append(record)
    return events


@pytest.mark.slow  # a 10 s flood
def test_under_a_flood_tips_are_stored_at_once_and_reads_answer_or_say_busy(
    relay: RelayServer, api_key: SigningKey
) -> None:
    codename = str(generate_codename())
    keys = keys_for(relay, codename)
    put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, "GENUINE-REPLY"))
    messages: list[str] = []
    result = asyncio.run(flood(
        relay.port, FLOOD_SECONDS, FLOOD_RATE, codename,
        languages=("en", "ru", "uk"), tip_messages=messages,
    ))  # fmt: skip
    print(f"\nflood: {result.sent} sent, {dict(result.statuses)}")

    tips = result.of("tip_codename") + result.of("tip_one_off")
    assert len(result.of("tip_codename")) >= 4 and len(result.of("tip_one_off")) >= 4
    for tip in tips:
        # Acknowledged: the confirmation itself for a tip with a codename (it shows
        # the codename once more), a redirect to it for a one-off tip.
        acknowledged = 200 if tip.kind == "tip_codename" else 303
        assert tip.status == acknowledged, (tip.kind, tip.status, tip.body[:300])
        assert tip.seconds < TIP_BOUND_SECONDS, (tip.kind, tip.seconds)
    print("tips:", sorted(round(tip.seconds, 2) for tip in tips))

    reads = result.of("read") + result.of("read_fresh")
    assert len(result.of("read")) >= 4 and len(result.of("read_fresh")) >= 4
    for read in reads:
        if read.status == 200:
            assert read.seconds < READ_BOUND_SECONDS, read.seconds
            assert (b"GENUINE-REPLY" in read.body) == (read.kind == "read")
        else:
            assert read.status == 503, (read.status, read.body[:300])
            assert read.retry_after == "60"
            assert read.seconds < BUSY_BOUND_SECONDS, read.seconds
    print("reads:", [(read.kind, read.status, round(read.seconds, 2)) for read in reads])

    # Nothing acknowledged is lost: every real tip decrypts from the store.
    stored = set(stored_messages(relay.blob_paths(), relay.identity_path))
    assert set(messages) <= stored

    # Once the flood is over, the same source reads its reply at once.
    after = asyncio.run(real_read(relay.port, codename))
    assert after.status == 200 and b"GENUINE-REPLY" in after.body
    assert after.seconds < READ_BOUND_SECONDS


def test_a_client_that_hung_up_gets_no_derivation(relay: RelayServer) -> None:
    assert relay.proc is not None
    meter = CpuMeter(relay.proc.pid)
    meter.wait_until_quiet()
    paths = ("/replies", "/replies/attachment", "/replies/delete")

    async def hang_up_burst(count: int) -> None:
        async def one(index: int) -> None:
            path = paths[index % len(paths)]
            fields = {"codename": str(generate_codename())}
            if path != "/replies":
                fields.update({"slot": "0", "name": "x"} if "attachment" in path else {"slot": "0"})
            headers, body = urlencoded(fields)
            await send_request(relay.port, "POST", path, headers, [body], close_after_body=True)

        await asyncio.gather(*(one(index) for index in range(count)))

    asyncio.run(hang_up_burst(200))
    used = meter.wait_until_quiet()
    print(f"\n200 requests hung up at once: the relay used {used:.2f} s of CPU")
    # Each derivation is about 0.15 s of CPU: 200 of them would be some 30 s.
    # A few may start before the relay sees the connection close.
    assert used < 6.0
    read = asyncio.run(real_read(relay.port, str(generate_codename())))
    assert read.status == 200 and read.seconds < READ_BOUND_SECONDS

    relay.stop()
    (pressure,) = relay_events(relay, "derivation.pressure")
    assert pressure["dropped_bucket"] in ("10 to 99", "over 100")


def test_the_busy_page_is_honest_fast_and_translated_and_the_operator_sees_pressure(
    relay: RelayServer,
) -> None:
    async def burst(language: str) -> list[tuple[int, str | None, float, bytes]]:
        async def one() -> tuple[int, str | None, float, bytes]:
            answer = await real_read(relay.port, str(generate_codename()), language)
            assert answer.status is not None
            return answer.status, answer.retry_after, answer.seconds, answer.body

        return await asyncio.gather(*(one() for _ in range(12)))

    for language, title in BUSY_TITLES.items():
        answers = asyncio.run(burst(language))
        assert {status for status, *_ in answers} <= {200, 503}
        busy = [answer for answer in answers if answer[0] == 503]
        # One derives, four wait: the rest are told at once.
        assert len(busy) >= 5, [answer[:3] for answer in answers]
        for _, retry_after, seconds, body in busy:
            page = body.decode()
            assert retry_after == "60"
            assert seconds < BUSY_BOUND_SECONDS
            assert title in page
            assert "codename" not in page.lower() or language != "en"
            assert "Word" not in page

    relay.stop()
    log = relay.log_text()
    (pressure,) = relay_events(relay, "derivation.pressure")
    assert pressure["level"] == "warning"
    assert set(pressure) == {"event", "level", "logger", "minutes", "refused_bucket",
                             "dropped_bucket"}  # fmt: skip
    assert pressure["refused_bucket"] in COUNT_BUCKETS - {"none", "under 10"}
    # No line per refused request: the daily total and the pressure line only.
    assert log.count("derivation_refused_busy") == 1


def test_one_sources_read_download_and_delete_derive_once(
    relay: RelayServer, api_key: SigningKey
) -> None:
    assert relay.proc is not None
    meter = CpuMeter(relay.proc.pid)
    codename = str(generate_codename())
    keys = keys_for(relay, codename)
    put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, "HELLO", [("a.txt", b"A")]))
    meter.wait_until_quiet()

    def cpu_of(path: str, fields: dict[str, str]) -> tuple[float, int, bytes]:
        before = meter.cpu_seconds()
        headers, body = urlencoded({"codename": codename, **fields})
        answer = asyncio.run(send_request(relay.port, "POST", path, headers, [body]))
        assert answer is not None
        return meter.cpu_seconds() - before, answer.status, answer.body

    first, status, page = cpu_of("/replies", {})
    assert status == 200 and b"HELLO" in page
    download, status, data = cpu_of("/replies/attachment", {"slot": "1", "name": "a.txt"})
    assert status == 200 and data == b"A"
    delete, status, page = cpu_of("/replies/delete", {"slot": "1"})
    assert status == 200 and b"HELLO" not in page
    print(f"\nCPU: read {first:.3f} s, download {download:.3f} s, delete {delete:.3f} s")
    # A derivation is about 0.15 s of CPU; the download and delete reuse the read's keys.
    assert first > download + delete
    assert download + delete < 0.12


captured_log = support_logcapture.captured_log


def test_what_one_source_does_writes_no_pressure_line(captured_log: CapturedLog) -> None:
    """A reader who pressed Stop, or met the busy page a few times, is no flood: a line
    for them would date their visit to ten minutes (source activity is daily totals)."""
    gate = DerivationGate(1, 4, 0.8)
    gate.counts.dropped, gate.counts.refused, gate.counts.derived = 2, PRESSURE_THRESHOLD - 3, 5
    gate.report_pressure()
    assert [e for e in captured_log.events if e["event"] == "derivation.pressure"] == []
    gate.counts.refused = PRESSURE_THRESHOLD
    gate.report_pressure()
    (line,) = [e for e in captured_log.events if e["event"] == "derivation.pressure"]
    assert line["refused_bucket"] == "10 to 99" and "derived_bucket" not in line


def test_ring_reads_with_cached_keys_are_bounded_too() -> None:
    """Cached keys skip the derivation slots; decrypting the ring still takes a slot
    of its own, and a reader who gets none in time is told the relay is busy."""

    async def scenario() -> tuple[int, float]:
        app = web.Application()
        app[RING_READ_SLOTS] = asyncio.Semaphore(RING_READS_AT_ONCE)
        app[CONFIG] = dataclasses.replace(load_config({}, None), derivation_wait_ms=200)
        request = make_mocked_request("POST", "/replies", app=app)
        held = contextlib.AsyncExitStack()
        for _ in range(RING_READS_AT_ONCE):
            await held.enter_async_context(ring_reading(request))
        started = time.monotonic()
        with pytest.raises(SourceProblem) as busy:
            async with ring_reading(request):
                pass
        waited = time.monotonic() - started
        await held.aclose()
        async with ring_reading(request):  # free again once the others are done
            pass
        return busy.value.problem.status, waited

    status, waited = asyncio.run(scenario())
    assert status == 503 and waited < 2.0
