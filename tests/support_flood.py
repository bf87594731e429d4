"""A flood of anonymous requests at every codename endpoint, and real sources beside it.

Used by tests/test_derivation_flood.py (a short flood) and bench/derivation_flood.py
(60 s, with figures). Everything is real: a running ``tiprelay serve`` on
127.0.0.1, raw HTTP/1.1 over asyncio streams (``tests.support_forms.send_request``).

The flood: ``rate`` requests a second, each with a fresh random codename (7 list
words, so that a relay that derives must derive), cycling over ``POST /replies``,
``/replies/attachment``, ``/replies/delete`` and ``/submit``, every second one
hanging up as soon as its request is sent. The real sources: a no-JS tip with
the form's default codename, one with the codename field cleared, and a reply
read with a real codename, in turn, each timed from the first byte sent to the
answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from relay.conversation.codename import generate_codename
from relay.crypto.decrypt import decrypt_bytes
from relay.crypto.identities import X25519Identity
from tests.support_conversation import NOSCRIPT_CODENAME
from tests.support_forms import Response, send_request, text_fields_multipart

FLOOD_PATHS = ("/replies", "/replies/attachment", "/replies/delete", "/submit")
READ_TIMEOUT_SECONDS = 120.0
"""A real source's wait is recorded whatever it is; past this it counts as lost."""


def urlencoded(fields: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = urllib.parse.urlencode(fields).encode()
    return {"Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body))}, body  # fmt: skip




def bogus_request(path: str) -> tuple[dict[str, str], bytes]:
    """A request with a random (well-formed) codename for ``path``."""
    codename = str(generate_codename())
    if path == "/submit":
        return text_fields_multipart([("lang", "en"), ("codename", codename), ("message", "x")])
    fields = {"codename": codename}
    if path != "/replies":
        fields["slot"] = "0"
    if path == "/replies/attachment":
        fields["name"] = "x"
    return urlencoded(fields)


@dataclass
class Timed:
    """One real source's request: what it got and how long it waited."""

    kind: str
    status: int | None
    seconds: float
    retry_after: str | None = None
    body: bytes = b""
    message: str = ""
    """For a tip: its message, to find it in the store."""


@dataclass
class FloodResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    real: list[Timed] = field(default_factory=list)

    def of(self, kind: str) -> list[Timed]:
        return [item for item in self.real if item.kind == kind]


async def timed(port: int, kind: str, method: str, path: str,
                headers: dict[str, str], body: bytes) -> Timed:  # fmt: skip
    started = time.monotonic()
    try:
        answer: Response | None = await send_request(
            port, method, path, headers, [body], read_timeout=READ_TIMEOUT_SECONDS
        )
    except (TimeoutError, ConnectionError):
        answer = None
    seconds = time.monotonic() - started
    if answer is None:
        return Timed(kind, None, seconds)
    return Timed(kind, answer.status, seconds, answer.headers.get("retry-after"), answer.body)


async def offered_codename(port: int) -> str:
    """The codename the no-JS form offers (what a source keeps by default)."""
    answer = await send_request(port, "GET", "/?lang=en", {})
    assert answer is not None and answer.status == 200
    match = NOSCRIPT_CODENAME.search(answer.body.decode())
    assert match is not None, "no codename field inside <noscript>"
    return match.group(1)


async def real_tip(port: int, message: str, *, with_codename: bool) -> Timed:
    codename = await offered_codename(port)
    fields = [("lang", "en"), ("codename", codename if with_codename else ""),
              ("message", message)]  # fmt: skip
    headers, body = text_fields_multipart(fields)
    kind = "tip_codename" if with_codename else "tip_one_off"
    sent = await timed(port, kind, "POST", "/submit", headers, body)
    sent.message = message
    return sent


async def big_tip(port: int, message: str, attachment_bytes: int) -> Timed:
    """A one-off no-JS tip with one attachment of ``attachment_bytes`` random bytes."""
    boundary = uuid.uuid4().hex
    head = b""
    for name, value in (("lang", "en"), ("codename", ""), ("message", message)):
        head += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        head += value.encode() + b"\r\n"
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
             'filename="evidence.bin"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    body = head + os.urandom(attachment_bytes) + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(body))}  # fmt: skip
    sent = await timed(port, "big_one_off", "POST", "/submit", headers, body)
    sent.message = message
    return sent


async def real_read(port: int, codename: str, language: str = "en") -> Timed:
    headers, body = urlencoded({"codename": codename})
    return await timed(port, "read", "POST", f"/replies?lang={language}", headers, body)


async def _bogus(port: int, path: str, hang_up: bool, result: FloodResult) -> None:
    headers, body = bogus_request(path)
    try:
        answer = await send_request(
            port, "POST", path + "?lang=en", headers, [body],
            read_timeout=READ_TIMEOUT_SECONDS, close_after_body=hang_up,
        )  # fmt: skip
    except (TimeoutError, ConnectionError, OSError):
        result.statuses["error"] += 1
        return
    result.statuses["hung up" if hang_up else str(answer.status if answer else "closed")] += 1


async def flood(
    port: int,
    seconds: float,
    rate: float,
    real_codename: str,
    *,
    real_every: float = 0.5,
    languages: tuple[str, ...] = ("en",),
    tip_messages: list[str] | None = None,
) -> FloodResult:
    """Flood for ``seconds`` at ``rate`` requests a second while real sources send and read.

    Every ``real_every`` seconds one real request starts, in turn: a tip with the
    form's codename, a one-off tip, a reply read by the source of ``real_codename``
    (in each of ``languages`` in turn), and a first read by a new source (a fresh
    codename: nothing cached for it). ``rate`` 0: no flood (a baseline).
    The messages of the real tips are appended to ``tip_messages``.
    """
    result = FloodResult()
    tasks: set[asyncio.Task[None]] = set()
    real_tasks: list[asyncio.Task[Timed]] = []
    started = time.monotonic()
    next_real = started
    turn = 0
    index = 0
    step = 1 / rate if rate > 0 else real_every
    while (now := time.monotonic()) - started < seconds:
        if rate > 0:
            path = FLOOD_PATHS[index % len(FLOOD_PATHS)]
            task = asyncio.create_task(_bogus(port, path, (index // 4) % 2 == 1, result))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            result.sent += 1
        index += 1
        if now >= next_real:
            next_real += real_every
            real_tasks.append(asyncio.create_task(_real_turn(port, turn, real_codename,
                                                             languages, tip_messages)))  # fmt: skip
            turn += 1
        await asyncio.sleep(max(0.0, started + index * step - time.monotonic()))
    result.real = list(await asyncio.gather(*real_tasks))
    for task in list(tasks):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def _real_turn(port: int, turn: int, codename: str, languages: tuple[str, ...],
                     tip_messages: list[str] | None) -> Timed:  # fmt: skip
    kind = turn % 4
    language = languages[(turn // 4) % len(languages)]
    if kind == 2:
        return await real_read(port, codename, language)
    if kind == 3:
        fresh = await real_read(port, str(generate_codename()), language)
        fresh.kind = "read_fresh"
        return fresh
    message = f"REAL-TIP-{turn}-{os.urandom(4).hex()}"
    if tip_messages is not None:
        tip_messages.append(message)
    return await real_tip(port, message, with_codename=kind == 0)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0.5 = median, 0.95 = p95); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def stored_messages(blobs: list[Path], identity_path: Path) -> Iterator[str]:
    """The ``message.txt`` of each stored submission, decrypted in this process."""
    lines = identity_path.read_text().splitlines()
    identity = X25519Identity.parse(next(x for x in lines if x.startswith("AGE-SECRET-KEY-")))
    for blob in blobs:
        plaintext = decrypt_bytes(blob.read_bytes(), [identity])
        # message.txt is the first member: its size is at offset 124 of the header.
        size = int(plaintext[124:136].rstrip(b"\0 ") or b"0", 8)
        yield plaintext[512 : 512 + size].decode()


class CpuMeter:
    """A process's CPU seconds (user + system) and RSS, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def wait_until_quiet(self, *, quiet_seconds: float = 1.0, limit_seconds: float = 90.0) -> float:
        """Wait until the process uses under 10 % of a core for ``quiet_seconds``;
        return the CPU seconds it used meanwhile."""
        start = last = self.cpu_seconds()
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            time.sleep(quiet_seconds)
            now = self.cpu_seconds()
            if now - last < 0.1 * quiet_seconds:
                break
            last = now
        return self.cpu_seconds() - start
