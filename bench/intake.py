"""Benchmark of the no-JavaScript intake path against a SecureDrop-style gpg baseline.

    .venv/bin/python bench/intake.py            # the full run (a few minutes)
    .venv/bin/python bench/intake.py --quick    # smaller counts, no 1 GiB run
    .venv/bin/python bench/intake.py --openpgp-only [--quick]   # section 5 alone

What it measures, in one run on this machine:

1. tiprelay: N concurrent ``POST /submit`` (multipart, as a browser without
   JavaScript sends it: a short message and one attachment of 4 KiB, 1 MiB or
   100 MiB) against a real ``tiprelay serve`` on 127.0.0.1: submissions per
   second, p50/p99 latency (request sent to receipt received; connections
   kept alive, as a browser keeps them between pages) and the
   server's peak RSS (psutil on the server's pid). Every submission goes the
   whole way: spool, tar, Padmé, age to one X25519 reviewer, fsync, rename,
   SQLite row.
2. The baseline, the way SecureDrop's source app seals a submission:
   python-gnupg encrypting to an OpenPGP key (RSA 4096, as SecureDrop's
   journalist key) in a throwaway GNUPGHOME: the message in one gpg process,
   the attachment gzip-compressed and encrypted in a second one, each to a
   file. Run with the same concurrency (threads) and one at a time (gpg
   serialises on its keyring lock); the better of the two is the baseline.
   The baseline has no HTTP, no multipart parsing and no fsync, so the ratio
   favours gpg.
3. tiprelay's sealing alone, without HTTP (``relay.server.sealing``: tar, Padmé,
   age, fsync, rename, row), in threads at the same concurrency: the
   like-for-like comparison with the baseline.
4. Server RSS while a single 1 GiB submission streams through a freshly
   started server (so that memory kept from the runs before does not count).
5. OpenPGP reviewers: two more relays side by side, one with three age
   reviewers, one with one OpenPGP reviewer (an ed25519 + cv25519 key in a
   real gpg home, made as tests/support_openpgp.py makes them) and two age
   reviewers. The reference has three age reviewers, not two: the same team
   size, so the ratio prices exactly one reviewer on OpenPGP instead of age
   (the X25519 wrap it replaces costs microseconds, printed beside it). The
   same no-JS submissions go to both, interleaved (age, OpenPGP, OpenPGP,
   age, twice, a quarter of the count each) so that a machine busy with
   something else weighs on both alike; then sealing alone with the same two
   recipient sets. Beside rates, the CPU time per submission of the server
   and its gpg children: on a busy machine rates move with the neighbours'
   load, CPU time much less. Then the OpenPGP wrap alone, one at a time: wall
   time and CPU time (ours and the gpg process's) per submission, for a
   cv25519 and an RSA 3072 key.
   The 4 KiB and 1 MiB payloads only: at 100 MiB a few milliseconds per
   submission are lost in the noise.

The client runs on the same machine and shares its CPUs with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
import gnupg
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from relay.crypto.identities import X25519Identity  # noqa: E402
from relay.crypto.openpgp_keys import inspect_public_key  # noqa: E402
from relay.crypto.openpgp_recipient import OpenPGPRecipient, PublicKeyring  # noqa: E402
from relay.crypto.recipients import Recipient, X25519Recipient  # noqa: E402
from relay.server.sealing import (  # noqa: E402
    InMemoryBody,
    ReceivedAttachment,
    ReceivedSubmission,
    seal_submission,
)
from relay.store import SubmissionStore  # noqa: E402
from tests.support_forms import FilePart, Form, send_request  # noqa: E402
from tests.support_openpgp import (  # noqa: E402
    GpgReviewer,
    add_openpgp_reviewer,
    make_gpg_reviewer,
    remove_gpg_home,
)
from tests.support_server import RelayServer, new_relay, write_reviewer_key_file  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MESSAGE = "Benchmark submission: a short message beside the attachment.\n" * 4


@dataclass(frozen=True)
class Scenario:
    label: str
    size: int
    count: int
    concurrency: int


FULL = (
    Scenario("4 KiB", 4 * KiB, 400, 8),
    Scenario("1 MiB", 1 * MiB, 100, 8),
    Scenario("100 MiB", 100 * MiB, 6, 2),
)
QUICK = (
    Scenario("4 KiB", 4 * KiB, 100, 8),
    Scenario("1 MiB", 1 * MiB, 30, 8),
    Scenario("100 MiB", 100 * MiB, 2, 2),
)


@dataclass
class Result:
    per_second: float
    p50: float
    p99: float
    peak_rss: int | None = None
    concurrency: int | None = None
    cpu_per_item: float | None = None


@dataclass(frozen=True)
class Timed:
    """A batch of submissions: each one's latency, the batch's wall time, and the CPU
    time of whoever did the work (the server with its gpg children, or this process)."""

    latencies: list[float]
    elapsed: float
    cpu: float


def cpu_seconds(process: psutil.Process) -> float:
    """User and system time of ``process`` and of the children it has waited for."""
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


class PeakRss:
    """Samples a process's RSS every few milliseconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summarize(latencies: list[float], elapsed: float) -> Result:
    return Result(
        per_second=len(latencies) / elapsed,
        p50=statistics.median(latencies),
        p99=percentile(latencies, 0.99),
    )


# --- tiprelay ------------------------------------------------------------------


async def submit_once(session: aiohttp.ClientSession, url: str, form: Form) -> float:
    """One browser-like multipart POST on a kept-alive connection; its latency."""
    body = form.body()
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": form.content_type},
                            allow_redirects=False) as response:
        await response.read()
        if response.status != 303:
            raise RuntimeError(f"submission refused: {response.status}")
    return time.perf_counter() - started


async def timed_submissions(
    relay: RelayServer, count: int, concurrency: int, payload: bytes
) -> tuple[Timed, int]:
    """``count`` submissions, ``concurrency`` at a time, each connection kept alive
    (as a browser does between pages): (their timing, the server's peak RSS)."""
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=3600)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> float:
            async with semaphore:
                form = Form(message=MESSAGE, files=[FilePart("evidence.bin", payload)])
                return await submit_once(session, relay.url + "/submit", form)

        assert relay.proc is not None
        server = psutil.Process(relay.proc.pid)
        cpu_before = cpu_seconds(server)
        with PeakRss(relay.proc.pid) as rss:
            started = time.perf_counter()
            latencies = await asyncio.gather(*(one() for _ in range(count)))
            elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server) - cpu_before
    return Timed(list(latencies), elapsed, cpu), rss.peak


async def run_tiprelay(relay: RelayServer, scenario: Scenario, payload: bytes) -> Result:
    """``count`` submissions, ``concurrency`` at a time, to one relay."""
    timed, peak_rss = await timed_submissions(relay, scenario.count, scenario.concurrency,
                                              payload)
    result = summarize(timed.latencies, timed.elapsed)
    result.peak_rss = peak_rss
    return result


async def stream_one_gib(relay: RelayServer) -> tuple[float, int]:
    """One 1 GiB attachment, generated on the fly; returns (seconds, server peak RSS)."""
    block = os.urandom(MiB)
    form = Form(message=MESSAGE, files=[])
    boundary = form.boundary
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n{MESSAGE}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
        'filename="one-gibibyte.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + GiB + len(tail)

    async def pieces() -> AsyncIterator[bytes]:
        yield head
        for _ in range(GiB // MiB):
            yield block
        yield tail

    headers = {"Content-Type": form.content_type, "Content-Length": str(length)}
    assert relay.proc is not None
    with PeakRss(relay.proc.pid) as rss:
        started = time.perf_counter()
        response = await send_request(relay.port, "POST", "/submit", headers, pieces(),
                                      read_timeout=3600)
        elapsed = time.perf_counter() - started
    if response is None or response.status != 303:
        raise RuntimeError("the 1 GiB submission was refused")
    return elapsed, rss.peak


def timed_sealing(store: SubmissionStore, recipients: list[Recipient], count: int,
                  concurrency: int, payload: bytes) -> Timed:
    """``seal_submission`` on its own, in threads, as the server's workers run it."""

    def one(_: int) -> float:
        started = time.perf_counter()
        submission = ReceivedSubmission(
            language="en", message=MESSAGE,
            attachments=[ReceivedAttachment("evidence.bin", InMemoryBody(payload))],
        )
        seal_submission(store, recipients, submission)
        return time.perf_counter() - started

    this_process = psutil.Process()
    cpu_before = cpu_seconds(this_process)
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - started
    return Timed(latencies, elapsed, cpu_seconds(this_process) - cpu_before)


def run_sealing_only(store: SubmissionStore, recipient: str, scenario: Scenario,
                     payload: bytes) -> Result:
    """Sealing alone to the relay's one age reviewer."""
    timed = timed_sealing(store, [X25519Recipient.parse(recipient)],
                          scenario.count, scenario.concurrency, payload)
    return summarize(timed.latencies, timed.elapsed)


# --- the SecureDrop-style baseline ---------------------------------------------------


def make_gpg(home: Path) -> tuple[gnupg.GPG, str]:
    """A throwaway GNUPGHOME with one RSA 4096 key, like SecureDrop's journalist key."""
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    key_input = gpg.gen_key_input(
        key_type="RSA", key_length=4096, name_real="Benchmark Journalist",
        name_email="journalist@example.org", no_protection=True,
    )
    key = gpg.gen_key(key_input)
    if not key.fingerprint:
        raise RuntimeError(f"gpg could not make a key: {key.stderr}")
    return gpg, key.fingerprint


def run_gpg(gpg: gnupg.GPG, fingerprint: str, scenario: Scenario, payload: bytes,
            out_dir: Path, concurrency: int) -> Result:
    """Each submission sealed as SecureDrop's source app does it: the message
    encrypted on its own (one gpg process), the attachment gzip-compressed
    (``GzipFile``, default level, mtime 0) and encrypted (a second gpg process),
    each to a file."""

    def encrypt(data: bytes | BinaryIO, output: Path) -> None:
        if isinstance(data, bytes):
            result = gpg.encrypt(data, fingerprint, output=str(output), armor=False,
                                 always_trust=True)
        else:
            result = gpg.encrypt_file(data, fingerprint, output=str(output), armor=False,
                                      always_trust=True)
        if not result.ok:
            raise RuntimeError(f"gpg failed: {result.status}")

    def one(index: int) -> float:
        started = time.perf_counter()
        encrypt(MESSAGE.encode(), out_dir / f"{index}-msg.gpg")
        with tempfile.TemporaryFile(dir=out_dir) as compressed:
            with gzip.GzipFile(filename="evidence.bin", mode="wb", fileobj=compressed,
                               mtime=0) as gzip_file:
                gzip_file.write(payload)
            compressed.seek(0)
            encrypt(compressed, out_dir / f"{index}-doc.gz.gpg")
        return time.perf_counter() - started

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(one, range(scenario.count)))
        elapsed = time.perf_counter() - started
    for output in out_dir.iterdir():
        output.unlink()
    result = summarize(latencies, elapsed)
    result.concurrency = concurrency
    return result


# --- OpenPGP reviewers --------------------------------------------------------------

TEAMS = ("age", "openpgp")  # three age reviewers; one OpenPGP and two age reviewers
# Each team's count in four parts, in turn: age, OpenPGP, OpenPGP, age, twice.
INTERLEAVED = ("age", "openpgp", "openpgp", "age") * 2
OPENPGP_PAYLOADS = ("4 KiB", "1 MiB")


@dataclass(frozen=True)
class Comparison:
    """The same work for the age-only team and for the team with an OpenPGP reviewer."""

    age: Result
    openpgp: Result

    @property
    def ratio(self) -> float:
        """OpenPGP team's rate over the age-only team's."""
        return self.openpgp.per_second / self.age.per_second


@dataclass(frozen=True)
class WrapCost:
    """One wrap at a time: wall time, and CPU time (this process and gpg) per wrap."""

    wall_p50: float
    cpu: float


@dataclass(frozen=True)
class OpenPGPFigures:
    rows: list[tuple[Scenario, Comparison, Comparison]]  # (scenario, HTTP, sealing alone)
    wraps: list[tuple[str, WrapCost]]


def interleaved(run_part: Callable[[str, int], Timed], count: int) -> Comparison:
    """``count`` runs for each team, in parts taken in turn (``INTERLEAVED``)."""
    parts = INTERLEAVED.count(TEAMS[0])
    timings: dict[str, list[Timed]] = {team: [] for team in TEAMS}
    for team in INTERLEAVED:
        part = count // parts + (len(timings[team]) < count % parts)
        timings[team].append(run_part(team, part))
    results = []
    for team in TEAMS:
        result = summarize([latency for t in timings[team] for latency in t.latencies],
                           sum(t.elapsed for t in timings[team]))
        result.cpu_per_item = sum(t.cpu for t in timings[team]) / count
        results.append(result)
    return Comparison(*results)


def new_age_recipient() -> X25519Recipient:
    return X25519Identity.generate().recipient


def openpgp_relays(base: Path, reviewer: GpgReviewer) -> dict[str, RelayServer]:
    """Two prepared relays: three age reviewers; one OpenPGP and two age reviewers."""
    settings: dict[str, str | int] = {"log_level": "warning", "disk_reserve_bytes": 0}
    relays = {team: new_relay(base / f"relay-{team}", settings) for team in TEAMS}
    # new_relay gave each its first age reviewer.
    write_reviewer_key_file(relays["age"].keys_dir, "second", str(new_age_recipient()))
    write_reviewer_key_file(relays["age"].keys_dir, "third", str(new_age_recipient()))
    write_reviewer_key_file(relays["openpgp"].keys_dir, "second", str(new_age_recipient()))
    add_openpgp_reviewer(relays["openpgp"].keys_dir, "olga", reviewer)
    return relays


def time_wraps(recipient: Recipient, count: int) -> WrapCost:
    """``count`` wraps of fresh file keys, one at a time."""
    latencies = []
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    for _ in range(count):
        file_key = os.urandom(16)
        started = time.perf_counter()
        recipient.wrap(file_key)
        latencies.append(time.perf_counter() - started)
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime
              for start, end in zip(before, after, strict=True))
    return WrapCost(wall_p50=statistics.median(latencies), cpu=cpu / count)


def run_openpgp(base: Path, scenarios: tuple[Scenario, ...], wrap_count: int) -> OpenPGPFigures:
    """Section 5: the age-only team against the team with an OpenPGP reviewer."""
    print("bench: making the OpenPGP reviewers' keys (cv25519, RSA 3072)...", flush=True)
    reviewer = make_gpg_reviewer("bench-olga")
    rsa_reviewer = make_gpg_reviewer("bench-rsa", "rsa3072")
    keys = [inspect_public_key(r.public_key, r.home.name) for r in (reviewer, rsa_reviewer)]
    keyring = PublicKeyring(base / "openpgp-keyring", keys)
    relays = openpgp_relays(base, reviewer)
    store = SubmissionStore(base / "sealing-openpgp")
    store.open()
    try:
        for relay in relays.values():
            relay.start()
        teams: dict[str, list[Recipient]] = {
            "age": [new_age_recipient() for _ in range(3)],
            "openpgp": [OpenPGPRecipient(keys[0], keyring),
                        new_age_recipient(), new_age_recipient()],
        }
        rows = []
        for scenario in scenarios:
            if scenario.label not in OPENPGP_PAYLOADS:
                continue
            payload = os.urandom(scenario.size)
            print(f"bench: OpenPGP team against age-only, {scenario.label} "
                  f"x {scenario.count} each...", flush=True)

            def by_http(team: str, count: int, scenario: Scenario = scenario,
                        payload: bytes = payload) -> Timed:
                timed, _ = asyncio.run(
                    timed_submissions(relays[team], count, scenario.concurrency, payload))
                return timed

            def sealing(team: str, count: int, scenario: Scenario = scenario,
                        payload: bytes = payload) -> Timed:
                return timed_sealing(store, teams[team], count, scenario.concurrency, payload)

            rows.append((scenario, interleaved(by_http, scenario.count),
                         interleaved(sealing, scenario.count)))
        print(f"bench: the OpenPGP wrap alone, {wrap_count} times per key...", flush=True)
        wraps = [
            ("OpenPGP cv25519", time_wraps(OpenPGPRecipient(keys[0], keyring), wrap_count)),
            ("OpenPGP RSA 3072", time_wraps(OpenPGPRecipient(keys[1], keyring), wrap_count)),
            ("age X25519", time_wraps(new_age_recipient(), wrap_count)),
        ]
    finally:
        for relay in relays.values():
            relay.stop()
        store.close()
        keyring.close()
        remove_gpg_home(reviewer.home)
        remove_gpg_home(rsa_reviewer.home)
    return OpenPGPFigures(rows, wraps)


def milliseconds(seconds: float | None) -> float:
    assert seconds is not None
    return seconds * 1000


def openpgp_lines(figures: OpenPGPFigures) -> Iterator[str]:
    yield ("OpenPGP reviewers, no-JS intake: 1 OpenPGP (cv25519) + 2 age reviewers (+pgp) "
           "against 3 age reviewers, same run, interleaved.")
    yield ("CPU ms: per submission, of the server and its gpg children (HTTP) or of this "
           "process and its gpg children (sealing alone).")
    yield (f"{'payload':>8} {'N':>4} {'conc':>4} | {'3 age/s':>7} {'+pgp/s':>7} {'ratio':>6} "
           f"{'p50 ms':>7} {'+pgp p50':>8} {'CPU ms':>7} {'+pgp CPU':>8} | "
           f"{'seal 3age':>9} {'seal +pgp':>9} {'ratio':>6} {'CPU ms':>7} {'+pgp CPU':>8}")
    for scenario, http, sealing in figures.rows:
        yield (f"{scenario.label:>8} {scenario.count:>4} {scenario.concurrency:>4} | "
               f"{http.age.per_second:>7.1f} {http.openpgp.per_second:>7.1f} "
               f"{http.ratio:>6.2f} {http.age.p50 * 1000:>7.1f} "
               f"{http.openpgp.p50 * 1000:>8.1f} {milliseconds(http.age.cpu_per_item):>7.1f} "
               f"{milliseconds(http.openpgp.cpu_per_item):>8.1f} | "
               f"{sealing.age.per_second:>9.1f} {sealing.openpgp.per_second:>9.1f} "
               f"{sealing.ratio:>6.2f} {milliseconds(sealing.age.cpu_per_item):>7.1f} "
               f"{milliseconds(sealing.openpgp.cpu_per_item):>8.1f}")
    yield "The wrap alone, one at a time (wall p50; CPU of tiprelay and gpg, per wrap):"
    for label, cost in figures.wraps:
        yield (f"  {label:<17} {cost.wall_p50 * 1000:>7.2f} ms wall "
               f"{cost.cpu * 1000:>7.2f} ms CPU")


# --- the run ---------------------------------------------------------------------------


def mib(size: int | None) -> str:
    return "-" if size is None else f"{size / MiB:.0f} MiB"


def table(rows: list[tuple[Scenario, Result, Result, Result]]) -> Iterator[str]:
    yield (f"{'payload':>8} {'N':>4} {'conc':>4} | {'HTTP/s':>7} {'p50 ms':>7} "
           f"{'p99 ms':>7} {'peak RSS':>8} | {'seal/s':>7} | {'gpg/s':>6} {'conc':>4} "
           f"{'p50 ms':>7} {'p99 ms':>7} | {'HTTP/gpg':>8} {'seal/gpg':>8}")
    for scenario, ours, sealing, theirs in rows:
        yield (f"{scenario.label:>8} {scenario.count:>4} {scenario.concurrency:>4} | "
               f"{ours.per_second:>7.1f} {ours.p50 * 1000:>7.1f} {ours.p99 * 1000:>7.1f} "
               f"{mib(ours.peak_rss):>8} | {sealing.per_second:>7.1f} | "
               f"{theirs.per_second:>6.1f} {theirs.concurrency:>4} "
               f"{theirs.p50 * 1000:>7.1f} {theirs.p99 * 1000:>7.1f} | "
               f"{ours.per_second / theirs.per_second:>7.1f}x "
               f"{sealing.per_second / theirs.per_second:>7.1f}x")


MainRun = tuple[int, list[tuple[Scenario, Result, Result, Result]], tuple[float, int] | None]


def run_against_gpg(base: Path, scenarios: tuple[Scenario, ...], *, gib: bool) -> MainRun:
    """Sections 1 to 4: (idle RSS, one row per scenario, the 1 GiB run or None)."""
    print("bench: making the gpg baseline's RSA 4096 key...", flush=True)
    gpg, fingerprint = make_gpg(base / "gnupg")
    gpg_out = base / "gpg-out"
    gpg_out.mkdir()
    relay = new_relay(base / "relay", {"log_level": "warning", "disk_reserve_bytes": 0})
    relay.start()
    store = SubmissionStore(base / "sealing-only")
    store.open()
    try:
        assert relay.proc is not None
        idle_rss = psutil.Process(relay.proc.pid).memory_info().rss
        rows = []
        for scenario in scenarios:
            payload = os.urandom(scenario.size)
            print(f"bench: {scenario.label} x {scenario.count}...", flush=True)
            ours = asyncio.run(run_tiprelay(relay, scenario, payload))
            sealing = run_sealing_only(store, relay.recipient, scenario, payload)
            # gpg serialises on its keyring lock, so it may do better one at a
            # time: the baseline is the better of the two.
            theirs = max(
                (run_gpg(gpg, fingerprint, scenario, payload, gpg_out, concurrency)
                 for concurrency in sorted({1, scenario.concurrency})),
                key=lambda result: result.per_second,
            )
            rows.append((scenario, ours, sealing, theirs))
        one_gib: tuple[float, int] | None = None
        if gib:
            print("bench: one 1 GiB submission (on a freshly started server)...", flush=True)
            relay.stop()
            relay.start()
            one_gib = asyncio.run(stream_one_gib(relay))
    finally:
        relay.stop()
        store.close()
    return idle_rss, rows, one_gib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, no 1 GiB run")
    parser.add_argument("--skip-gib", action="store_true", help="skip the 1 GiB RSS run")
    parser.add_argument("--openpgp-only", action="store_true",
                        help="only section 5: OpenPGP reviewers against age-only")
    arguments = parser.parse_args()
    scenarios = QUICK if arguments.quick else FULL
    if shutil.which("gpg") is None:
        sys.exit("bench: the gpg binary is missing (scripts/setup installs it)")

    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-") as scratch:
        base = Path(scratch)
        main_run = None
        if not arguments.openpgp_only:
            main_run = run_against_gpg(base, scenarios, gib=not (arguments.quick
                                                                 or arguments.skip_gib))
        openpgp = run_openpgp(base, scenarios, wrap_count=30 if arguments.quick else 100)

    print()
    gpg_version = subprocess.run(["gpg", "--version"], capture_output=True, text=True)
    print(f"machine: {os.cpu_count()} CPUs; client and server share them. "
          f"{gpg_version.stdout.splitlines()[0]}")
    if main_run is not None:
        idle_rss, rows, gib = main_run
        print(f"server RSS when idle: {mib(idle_rss)}")
        for line in table(rows):
            print(line)
        if gib is not None:
            seconds, peak = gib
            print(f"1 GiB submission: {seconds:.1f} s ({GiB / MiB / seconds:.0f} MiB/s end "
                  f"to end), server peak RSS {mib(peak)} (target < 150 MiB)")
        print()
    for line in openpgp_lines(openpgp):
        print(line)

if __name__ == "__main__":
    main()
