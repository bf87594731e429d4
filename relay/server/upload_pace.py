"""Cutting off a request body that arrives too slowly.

Sources reach the relay over Tor, so there is no address to block: a sender
that trickles a form a byte a second must cost the relay nothing scarce while
it waits (it holds no sealing slot, see ``submit``), and be cut off once it is
clearly not a real upload. ``body_pace`` runs a block (the reading of a body)
under one deadline that moves with the bytes that actually arrive on the
connection (``StreamReader.total_bytes``); it is the earliest of:

- **idle**: the last new byte plus ``idle_seconds``;
- **slow**: the moment the average rate since the body began would fall below
  ``min_bytes_per_second`` if nothing more came, but never before
  ``grace_seconds`` (a Tor circuit is slow to start and may pause);
- **total**: the beginning plus ``total_seconds``.

When it passes, the block is cancelled and ``BodyTooSlow`` says which limit
it was (a code for a counter; never an address or a time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import StreamReader

from relay.config import Config

IDLE = "idle"
SLOW = "slow"
TOTAL = "total"

_MAX_POLL_SECONDS = 1.0
_MIN_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class PaceLimits:
    """How slowly a body may arrive (see config/relay.toml)."""

    idle_seconds: float
    grace_seconds: float
    min_bytes_per_second: int
    """0: no minimum rate (idle and total still apply)."""
    total_seconds: float

    @classmethod
    def from_config(cls, config: Config) -> PaceLimits:
        return cls(
            idle_seconds=config.submit_idle_timeout_seconds,
            grace_seconds=config.submit_rate_grace_seconds,
            min_bytes_per_second=config.submit_min_bytes_per_second,
            total_seconds=config.request_timeout_seconds,
        )

    @property
    def poll_seconds(self) -> float:
        """How often arrivals are looked at: a small part of the shortest limit."""
        shortest = min(self.idle_seconds, self.grace_seconds, self.total_seconds)
        return max(_MIN_POLL_SECONDS, min(_MAX_POLL_SECONDS, shortest / 4))


class BodyTooSlow(Exception):
    """The body stopped, or crawled, past the limits; ``reason`` is IDLE, SLOW or TOTAL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Deadline:
    """The earliest moment each limit allows, given what has arrived so far."""

    def __init__(self, content: StreamReader, limits: PaceLimits, start: float) -> None:
        self._content = content
        self._limits = limits
        self._start = start
        self._seen_bytes = content.total_bytes
        self._last_arrival = start

    def update(self, now: float) -> tuple[float, str]:
        """Note any new bytes; return the deadline and the limit that sets it."""
        arrived = self._content.total_bytes
        if arrived != self._seen_bytes:
            self._seen_bytes = arrived
            self._last_arrival = now
        limits = self._limits
        candidates = [
            (self._start + limits.total_seconds, TOTAL),
            (self._last_arrival + limits.idle_seconds, IDLE),
        ]
        if limits.min_bytes_per_second > 0:
            # Average since the start stays >= the minimum until start + bytes/rate.
            keeps_rate_until = self._start + arrived / limits.min_bytes_per_second
            candidates.append((max(self._start + limits.grace_seconds, keeps_rate_until), SLOW))
        return min(candidates)


@contextlib.asynccontextmanager
async def body_pace(content: StreamReader, limits: PaceLimits) -> AsyncIterator[None]:
    """Run the block until the body's pace breaks a limit; then ``BodyTooSlow``."""
    loop = asyncio.get_running_loop()
    deadline = _Deadline(content, limits, loop.time())
    when, reason = deadline.update(loop.time())
    timeout = asyncio.timeout_at(when)

    async def follow_arrivals() -> None:
        nonlocal reason
        while True:
            await asyncio.sleep(limits.poll_seconds)
            when, reason = deadline.update(loop.time())
            timeout.reschedule(when)

    try:
        async with timeout:
            follower = asyncio.create_task(follow_arrivals(), name="body-pace")
            try:
                yield
            finally:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
    except TimeoutError:
        if timeout.expired():
            raise BodyTooSlow(reason) from None
        raise
