"""The background task: at each digest time, count and send; nothing else moves it.

The loop sleeps until the next time in ``notify_times`` by the wall clock (in
short naps, so that a clock set forward or back is noticed), takes the two
counts from the store in one transaction (which resets "arrived since"), and
hands the digest to the sender, whose retries end before the next time. An
arrival never wakes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from relay.log import get_logger
from relay.notify.digest import Digest
from relay.notify.schedule import next_digest_at
from relay.notify.sending import Sender

_log = get_logger("relay.notify")
NAP_SECONDS = 60.0

TakeCounts = Callable[[], Awaitable[tuple[int, int]]]
"""Returns (waiting, arrived since the last digest) and resets the latter."""


async def sleep_until(
    moment: float,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return at ``moment`` (epoch seconds) by ``clock``, checking it at least every minute."""
    while (left := moment - clock()) > 0:
        await sleep(min(left, NAP_SECONDS))


async def send_digest(take_counts: TakeCounts, sender: Sender, deadline: float | None) -> None:
    """Count, then send one digest (retried until ``deadline``); a failure is logged."""
    try:
        waiting, arrived = await take_counts()
    except Exception as error:  # the store failed: skip this digest, log the type only
        _log.error("notify.count_failed", error_type=type(error).__name__)
        return
    try:
        await sender.deliver(Digest(waiting=waiting, arrived=arrived), deadline=deadline)
    except Exception as error:  # a bug must not end the digests; log the type only
        _log.error("notify.send_failed", error_type=type(error).__name__)


async def run_digests(
    times: Sequence[str],
    take_counts: TakeCounts,
    sender: Sender,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Send a digest at every one of ``times`` (UTC), forever."""
    while True:
        moment = next_digest_at(times, clock())
        await sleep_until(moment, clock=clock, sleep=sleep)
        await send_digest(take_counts, sender, next_digest_at(times, moment))


__all__ = ["NAP_SECONDS", "TakeCounts", "run_digests", "send_digest", "sleep_until"]
