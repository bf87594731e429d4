"""Bounded admission for the codename derivations the no-JS reply pages need.

Only ``POST /replies``, ``/replies/attachment`` and ``/replies/delete`` derive
on the server (a tip or follow-up sent without JavaScript seals the codename
itself, see ``relay.server.submit``). A derivation is PBKDF2 with 2^18 rounds,
about 0.15 s of one core, asked for by anonymous requests the relay cannot tell
apart (sources come over Tor). So:

- at most ``max_concurrent_derivations`` run at once (default 1: on two cores
  one is left for intake);
- at most ``max_waiting_derivations`` requests wait for one, each at most
  ``derivation_wait_ms`` (800); anything beyond is answered at once with the
  "relay is busy, try again in a minute" page (503, ``Retry-After``), never
  with a wait of minutes;
- a request whose client has gone (its connection closed) is dropped before a
  derivation starts for it: when it arrives, and when a slot is handed to it;
- one source's reading, download and delete derive once: the keys of the last
  codenames derived are kept in memory for ``CACHE_SECONDS``, keyed by a keyed
  hash of the indices under a key made at start (never the indices themselves),
  at most ``CACHE_ENTRIES`` of them, swept every minute (``relay.server.app``)
  and when keys are added, and forgotten at shutdown.

The counts of what was refused or dropped are reported every ten minutes by
``relay.server.app``'s timer as one coarse log line, and only when there were
at least ``PRESSURE_THRESHOLD`` of them (more than one source makes): no line
per request, no time of a request, no count of readers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from relay.activity import activity
from relay.conversation.codename import Codename
from relay.conversation.derivation import ConversationKeys, encode_indices
from relay.log import count_bucket, get_logger
from relay.server.problems import DERIVATION_BUSY, SourceProblem

CACHE_SECONDS = 300.0
"""How long a derived codename's keys stay in memory: enough for one source to
read, download and delete; short, since they open that conversation's replies."""
CACHE_ENTRIES = 1024
"""At most this many codenames' keys are kept (about 300 bytes each)."""
REPORT_MINUTES = 10
PRESSURE_THRESHOLD = 10
"""Requests refused or dropped within REPORT_MINUTES before the operator's log says so."""

_log = get_logger("relay.server.derivation_gate")


class ClientGone(SourceProblem):
    """The client closed its connection before its derivation started: nothing runs."""

    def __init__(self) -> None:
        super().__init__(DERIVATION_BUSY)


def client_is_gone(request: web.Request) -> bool:
    """Whether the request's connection is closed or closing (nobody reads the answer)."""
    transport = request.transport
    return transport is None or transport.is_closing()


@dataclass
class PressureCounts:
    """What the gate did since the last report."""

    derived: int = 0
    refused: int = 0
    dropped: int = 0


class DerivationGate:
    """At most ``concurrent`` derivations at once, ``waiting`` more queued for at most
    ``wait_seconds``; see the module docstring."""

    def __init__(
        self,
        concurrent: int,
        waiting: int,
        wait_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = concurrent
        self._max_waiting = waiting
        self._wait_seconds = wait_seconds
        self._waiters: collections.deque[tuple[asyncio.Future[None], web.Request]] = (
            collections.deque()
        )
        self._clock = clock
        self._cache_key = secrets.token_bytes(32)
        self._cache: collections.OrderedDict[bytes, tuple[float, ConversationKeys]] = (
            collections.OrderedDict()
        )
        self.counts = PressureCounts()

    def __repr__(self) -> str:
        return "DerivationGate(<state not shown>)"

    # --- the cache -----------------------------------------------------------------

    def _cache_id(self, codename: Codename, relay_salt: bytes) -> bytes:
        message = encode_indices(codename) + relay_salt
        return hmac.new(self._cache_key, message, hashlib.sha256).digest()

    def cached(self, codename: Codename, relay_salt: bytes) -> ConversationKeys | None:
        """The keys derived for ``codename`` within ``CACHE_SECONDS``, or None."""
        cache_id = self._cache_id(codename, relay_salt)
        entry = self._cache.get(cache_id)
        if entry is None:
            return None
        if self._clock() - entry[0] > CACHE_SECONDS:
            del self._cache[cache_id]
            return None
        self._cache.move_to_end(cache_id)
        return entry[1]

    def remember(self, codename: Codename, relay_salt: bytes, keys: ConversationKeys) -> None:
        """Keep ``keys`` for ``CACHE_SECONDS``, dropping the least recently used beyond
        ``CACHE_ENTRIES``."""
        self.forget_expired()
        self._cache[self._cache_id(codename, relay_salt)] = (self._clock(), keys)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def forget_expired(self) -> None:
        """Drop every entry older than ``CACHE_SECONDS`` (a hit does not make one younger)."""
        now = self._clock()
        for cache_id in [k for k, (made, _) in self._cache.items() if now - made > CACHE_SECONDS]:
            del self._cache[cache_id]

    def forget_all(self) -> None:
        """Drop every cached key and make a new hash key (at shutdown)."""
        self._cache.clear()
        self._cache_key = secrets.token_bytes(32)

    # --- admission -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def admitted(self, request: web.Request) -> AsyncIterator[None]:
        """Hold a derivation slot for ``request``; DERIVATION_BUSY when none comes in
        time or the queue is full, ClientGone when its client has left."""
        if client_is_gone(request):
            self._drop()
        if self._free > 0:
            self._free -= 1
        else:
            await self._wait_for_slot(request)
        try:
            if client_is_gone(request):  # it left while waiting, or just now
                self._drop()
            self.counts.derived += 1
            yield
        finally:
            self._release()

    def _drop(self) -> None:
        self.counts.dropped += 1
        activity.count("derivation_dropped_client_gone")
        raise ClientGone

    def _refuse(self) -> None:
        self.counts.refused += 1
        activity.count("derivation_refused_busy")
        raise SourceProblem(DERIVATION_BUSY)

    async def _wait_for_slot(self, request: web.Request) -> None:
        """Queue for a slot; returns holding one, or raises without holding one."""
        self._prune_gone()
        if len(self._waiters) >= self._max_waiting:
            self._refuse()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, request))
        try:
            async with asyncio.timeout(self._wait_seconds):
                await waiter
        except TimeoutError:
            if self._owns_slot(waiter):
                return  # handed over just as the time ran out: use it
            self._forget_waiter(waiter)
            self._refuse()
        except BaseException:
            if self._owns_slot(waiter):
                self._release()
            else:
                self._forget_waiter(waiter)
            raise

    @staticmethod
    def _owns_slot(waiter: asyncio.Future[None]) -> bool:
        return waiter.done() and not waiter.cancelled() and waiter.exception() is None

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        for entry in self._waiters:
            if entry[0] is waiter:
                self._waiters.remove(entry)
                break

    def _prune_gone(self) -> None:
        """Waiters whose client has left give their place up at once."""
        for entry in [e for e in self._waiters if not e[0].done() and client_is_gone(e[1])]:
            self._waiters.remove(entry)
            entry[0].set_exception(ClientGone())
            self.counts.dropped += 1
            activity.count("derivation_dropped_client_gone")

    def _release(self) -> None:
        """Hand the slot to the first waiter still connected, or free it."""
        while self._waiters:
            waiter, request = self._waiters.popleft()
            if waiter.done():
                continue
            if client_is_gone(request):
                waiter.set_exception(ClientGone())
                self.counts.dropped += 1
                activity.count("derivation_dropped_client_gone")
                continue
            waiter.set_result(None)
            return
        self._free += 1

    # --- the operator's log --------------------------------------------------------

    def report_pressure(self, minutes: int = REPORT_MINUTES) -> None:
        """One warning line with coarse counts when something was refused or dropped
        since the last report; then start counting afresh."""
        counts, self.counts = self.counts, PressureCounts()
        # Only past what one source's own requests make (a reader who pressed
        # Stop is one dropped derivation): below it, a line would date that
        # reader's visit to ten minutes, while source activity is logged only
        # as daily totals. And no count of derivations: those are readers.
        if counts.refused + counts.dropped >= PRESSURE_THRESHOLD:
            _log.warning(
                "derivation.pressure",
                minutes=minutes,
                refused_bucket=count_bucket(counts.refused),
                dropped_bucket=count_bucket(counts.dropped),
            )
