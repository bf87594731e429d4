"""Real sources beside a flood at every codename endpoint, against a baseline (issue 20).

    .venv/bin/python bench/derivation_flood.py [--seconds 60] [--rate 40] [--baseline 20]

Starts a real ``tiprelay serve`` on 127.0.0.1 with its default derivation limits
and a conversation salt, puts one genuine reply into a conversation, then:

1. baseline: for ``--baseline`` seconds, no flood, real sources only;
2. flood: for ``--seconds`` seconds, ``--rate`` anonymous requests a second with
   random codenames over POST /replies, /replies/attachment, /replies/delete and
   /submit, every second one hanging up at once (tests/support_flood.py), while
   real sources, in turn every 0.5 s, send a no-JS tip with the form's codename,
   a one-off tip (codename cleared), read the genuine reply (the same source
   again: its keys may be cached) and read as a new source (nothing cached);
   halfway through, three one-off tips with a 16 MiB attachment each, at once;
3. hang-up burst: 300 requests sent at once and hung up, then a real read.

It prints p50/p95 of each kind's waits and outcomes, the relay's CPU % (of one
core) and RSS sampled every second, and checks that every acknowledged tip decrypts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.conversation.codename import generate_codename
from relay.crypto.signing import SigningKey
from tests.support_conversation import (
    conversation_relay,
    keys_for,
    put_reply,
    sealed_reply,
)
from tests.support_flood import (
    CpuMeter,
    FloodResult,
    Timed,
    big_tip,
    flood,
    median,
    percentile,
    real_read,
    send_request,
    stored_messages,
    urlencoded,
)


class Sampler:
    """CPU % and RSS of a process, sampled every second in a thread."""

    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last_cpu, last_time = self.meter.cpu_seconds(), time.monotonic()
        while not self._stop.wait(1.0):
            cpu, now = self.meter.cpu_seconds(), time.monotonic()
            self.cpu.append(100 * (cpu - last_cpu) / (now - last_time))
            self.rss.append(self.meter.rss_bytes())
            last_cpu, last_time = cpu, now


def report(name: str, result: FloodResult, sampler: Sampler) -> None:
    print(f"\n== {name}: {result.sent} flood requests; flood answers {dict(result.statuses)}")
    for kind in ("tip_codename", "tip_one_off", "big_one_off", "read", "read_fresh"):
        items = result.of(kind)
        waits = [item.seconds for item in items]
        outcomes: dict[str, int] = {}
        for item in items:
            outcomes[str(item.status)] = outcomes.get(str(item.status), 0) + 1
        line = f"  {kind:13} n={len(items):3}  p50 {median(waits):6.3f} s  p95 "
        line += f"{percentile(waits, 0.95):6.3f} s  max {max(waits, default=float('nan')):6.3f} s"
        line += f"  outcomes {outcomes}"
        for status in ("200", "503"):
            chosen = [item.seconds for item in items if str(item.status) == status]
            if chosen and kind.startswith("read"):
                line += f"  [{status}: p50 {median(chosen):.3f} p95 {percentile(chosen, 0.95):.3f}]"
        print(line)
    cpu, rss = sampler.cpu, sampler.rss
    if cpu:
        print(f"  relay CPU: mean {sum(cpu) / len(cpu):5.1f} %  p95 {percentile(cpu, 0.95):5.1f} %"
              f"  max {max(cpu):5.1f} %   RSS max {max(rss) / 2**20:6.1f} MiB"
              f"  (start {rss[0] / 2**20:.1f} MiB)")  # fmt: skip


async def hang_up_burst(port: int, count: int) -> None:
    paths = ("/replies", "/replies/attachment", "/replies/delete")

    async def one(index: int) -> None:
        path = paths[index % 3]
        fields = {"codename": str(generate_codename())}
        if path != "/replies":
            fields["slot"] = "0"
        if path == "/replies/attachment":
            fields["name"] = "x"
        headers, body = urlencoded(fields)
        await send_request(port, "POST", path, headers, [body], close_after_body=True)

    await asyncio.gather(*(one(index) for index in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--baseline", type=float, default=20.0)
    args = parser.parse_args()
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as tmp, conversation_relay(
        Path(tmp) / "relay", {}, key
    ) as relay:
        assert relay.proc is not None
        meter = CpuMeter(relay.proc.pid)
        codename = str(generate_codename())
        keys = keys_for(relay, codename)
        put_reply(relay, key, keys, 1, sealed_reply(relay, keys, 1, "GENUINE-REPLY"))
        languages = ("en", "ru", "uk")
        with Sampler(meter) as idle:
            baseline = asyncio.run(flood(relay.port, args.baseline, 0, codename,
                                         languages=languages))  # fmt: skip
        report(f"baseline, {args.baseline:.0f} s, no flood", baseline, idle)
        with Sampler(meter) as busy:
            flooded = asyncio.run(
                flood_with_big_tips(relay.port, args.seconds, args.rate, codename)
            )
        report(f"flood, {args.seconds:.0f} s at {args.rate:.0f} req/s", flooded, busy)
        meter.wait_until_quiet()
        asyncio.run(hang_up_burst(relay.port, 300))
        used = meter.wait_until_quiet()
        after = asyncio.run(real_read(relay.port, codename))
        print(f"\n== 300 requests sent at once and hung up: relay CPU {used:.2f} s "
              f"(a derivation each would be ~{300 * 0.15:.0f} s); the next real read: "
              f"{after.status} in {after.seconds:.3f} s")  # fmt: skip
        sent = [item for item in baseline.real + flooded.real if item.message]
        # A tip with a codename is acknowledged by its confirmation page (200), a
        # one-off tip by the redirect to it (303).
        acknowledged = [item.message for item in sent if item.status in (200, 303)]
        stored = set(stored_messages(relay.blob_paths(), relay.identity_path))
        lost = [message for message in acknowledged if message not in stored]
        print(f"\n{len(sent)} real tips sent, {len(acknowledged)} acknowledged, "
              f"{len(lost)} of those not stored")  # fmt: skip
        relay.stop()
        pressure = [line for line in relay.log_text().splitlines() if "derivation" in line]
        print("operator's log at shutdown:", *pressure, sep="\n  ")


BIG_TIP_BYTES = 16 * 1024 * 1024


async def flood_with_big_tips(
    port: int, seconds: float, rate: float, codename: str
) -> FloodResult:
    """The flood, and three big one-off tips sent together halfway through it."""

    async def big_tips() -> list[Timed]:
        await asyncio.sleep(seconds / 2)
        texts = [f"BIG-TIP-{index}" for index in range(3)]
        return list(await asyncio.gather(*(big_tip(port, text, BIG_TIP_BYTES) for text in texts)))

    result, big = await asyncio.gather(
        flood(port, seconds, rate, codename, languages=("en", "ru", "uk")),
        big_tips(),
    )
    result.real.extend(big)
    return result


if __name__ == "__main__":
    main()
