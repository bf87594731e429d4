"""What a flood of tiny anonymous tips costs: the relay's disk and a reviewer's time.

Nothing at the relay bounds how many tips anonymous clients send (sources come
over Tor: there is no address to count). This bench floods a real
``tiprelay serve`` on 127.0.0.1 for a bounded time and prices a day of it:

1. no-JS flood: ``--concurrency`` clients, each on a kept-alive connection,
   send ``POST /submit`` with a one-byte message (the cheapest tip there is)
   for ``--seconds``: accepted tips per second, the server's CPU per tip, and
   the bytes each adds to the data folder (blocks allocated: blob, SQLite row,
   WAL; measured after the relay stops and checkpoints).
2. browser-path flood (``--tus-seconds``, 0 skips it): the same with one
   prepared age file (a one-byte message, sealed as the browser seals it)
   uploaded again and again through tus (create, then one PATCH): the
   client pays no encryption per tip, the relay only checks the header.
3. The reviewer: ``tiprelay pull`` of everything the floods left, then
   ``tiprelay decrypt`` of that bundle with the age identity, as whole
   processes: seconds per tip. An OpenPGP reviewer needs one private-key
   operation per tip (one PKESK per file): on a smartcard, one card operation
   each, which the bench counts but cannot time (no card here).

Then it extrapolates one day at the measured rates. The client shares the
machine's CPUs with the server, so the rates are a floor for a faster server,
and Tor (the onion service's proof-of-work defence, its circuit costs) stands
in front of every real flood: see docs/security.md, "Floods of tips".

    .venv/bin/python bench/spam.py                   # 20 s no-JS, 10 s tus
    .venv/bin/python bench/spam.py --seconds 5 --tus-seconds 0   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from relay.container import SubmissionArchive  # noqa: E402
from relay.crypto.encrypt import Encryptor  # noqa: E402
from relay.crypto.recipients import X25519Recipient  # noqa: E402
from tests.support_forms import Form  # noqa: E402
from tests.support_reviewer import TIPRELAY, make_api_key  # noqa: E402
from tests.support_server import RelayServer, new_relay  # noqa: E402

DAY = 86400
TUS = {"Tus-Resumable": "1.0.0"}
ASSUMED_CARD_SECONDS = 0.1
"""Not measured (no card here): the order of one ECDH or RSA decryption on an
OpenPGP card. `time gpg -d` of one stanza with your own card gives the real one."""


@dataclass
class Flood:
    label: str
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float = 0.0

    @property
    def accepted(self) -> int:
        return self.statuses[303] + self.statuses[204]

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def allocated_bytes(folder: Path) -> int:
    """Bytes of disk the files under ``folder`` occupy (allocated blocks)."""
    return sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def sealed_tiny_tip(recipient: str) -> bytes:
    """A one-byte message, tarred, padded and age-encrypted, as the browser seals it."""
    archive = SubmissionArchive(language="ru", sealed_by="browser")
    encryptor = Encryptor([X25519Recipient.parse(recipient)])
    parts = [encryptor.start(), encryptor.update(archive.message("x"))]
    parts += [encryptor.update(chunk) for chunk in archive.finish()]
    parts.append(encryptor.finish())
    return b"".join(parts)


async def _flood(relay: RelayServer, flood: Flood, seconds: float, concurrency: int,
                 send_one: object) -> Flood:
    assert relay.proc is not None
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                flood.statuses[await send_one(session)] += 1  # type: ignore[operator]

        cpu_before = cpu_seconds(relay.proc.pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        flood.seconds = time.perf_counter() - started
        flood.server_cpu = cpu_seconds(relay.proc.pid) - cpu_before
    return flood


async def flood_no_js(relay: RelayServer, seconds: float, concurrency: int) -> Flood:
    form = Form(message="x")
    body, headers = form.body(), {"Content-Type": form.content_type}

    async def send_one(session: aiohttp.ClientSession) -> int:
        async with session.post(relay.url + "/submit", data=body, headers=headers,
                                allow_redirects=False) as response:
            await response.read()
            return response.status

    return await _flood(relay, Flood("no-JS POST /submit"), seconds, concurrency, send_one)


async def flood_tus(relay: RelayServer, seconds: float, concurrency: int) -> Flood:
    tip = sealed_tiny_tip(relay.recipient)

    async def send_one(session: aiohttp.ClientSession) -> int:
        async with session.post(relay.url + "/api/v1/uploads",
                                headers={**TUS, "Upload-Length": str(len(tip))}) as created:
            await created.read()
            if created.status != 201:
                return created.status
            location = created.headers["Location"]
        patch_headers = {**TUS, "Upload-Offset": "0",
                         "Content-Type": "application/offset+octet-stream"}
        async with session.patch(relay.url + location if location.startswith("/") else location,
                                 data=tip, headers=patch_headers) as patched:
            await patched.read()
            return patched.status

    return await _flood(relay, Flood("browser-sealed tus upload"), seconds, concurrency,
                        send_one)


def relay_config_reserve() -> int:
    """The default ``disk_reserve_bytes``: what the relay keeps free by refusing tips."""
    with (REPO / "config" / "relay.toml").open("rb") as file:
        return int(tomllib.load(file)["disk_reserve_bytes"])


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - started


def human_bytes(count: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="no-JS flood length")
    parser.add_argument("--tus-seconds", type=float, default=10.0,
                        help="browser-path flood length (0: skip)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at a time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiprelay-spam-",
                                     dir=os.environ.get("BENCH_DIR")) as tmp:
        base = Path(tmp)
        _, api_line = make_api_key(base / "api.key")
        relay = new_relay(base / "relay", {"log_level": "warning"}, api_key_text=api_line)
        relay.start()
        floods: list[Flood] = []
        try:
            empty = allocated_bytes(relay.data_dir)
            floods.append(asyncio.run(flood_no_js(relay, args.seconds, args.concurrency)))
            if args.tus_seconds > 0:
                floods.append(asyncio.run(flood_tus(relay, args.tus_seconds, args.concurrency)))
            bundle = base / "bundle"
            pull_s = timed([TIPRELAY, "pull", "--server", relay.url, "--key",
                            str(base / "api.key"), "-o", str(bundle)])
        finally:
            relay.stop()
        blobs = relay.blob_paths()
        tips = len(blobs)
        used = allocated_bytes(relay.data_dir) - empty
        blob_bytes = sum(p.stat().st_size for p in blobs)
        manifest = json.loads((bundle / "manifest.json").read_text())
        if len(manifest["submissions"]) != tips:
            raise SystemExit("the bundle does not hold every stored tip")
        decrypt_s = timed([TIPRELAY, "decrypt", "-i", str(relay.identity_path), str(bundle),
                           "-o", str(base / "out")])
        shutil.rmtree(base / "out")
        free = shutil.disk_usage(base).free - relay_config_reserve()

    print(f"{os.cpu_count()} CPUs; {args.concurrency} clients on 127.0.0.1, one age reviewer")
    for flood in floods:
        others = {s: n for s, n in flood.statuses.items() if s not in (303, 204)}
        cpu = flood.server_cpu / flood.accepted * 1e3 if flood.accepted else 0.0
        print(f"  {flood.label:<28} {flood.accepted:6d} accepted in {flood.seconds:5.1f} s: "
              f"{flood.per_second:6.1f} tips/s, server CPU {cpu:.2f} ms/tip"
              + (f", other answers {others}" if others else ""))
    per_tip_disk = used / tips
    per_tip_review = (pull_s + decrypt_s) / tips
    print(f"  disk: {tips} tips took {human_bytes(used)} ({per_tip_disk:.0f} B/tip allocated; "
          f"blobs {blob_bytes / tips:.0f} B each)")
    print(f"  reviewer: pull {pull_s:.1f} s + decrypt {decrypt_s:.1f} s = "
          f"{per_tip_review * 1e3:.1f} ms/tip (age identity); OpenPGP: 1 private-key "
          "operation per tip (on a smartcard, one card operation)")
    rate = floods[0].per_second
    per_day = rate * DAY
    print(f"one day at the no-JS rate ({rate:.0f} tips/s):")
    print(f"  {per_day:,.0f} tips, {human_bytes(per_day * per_tip_disk)} of disk "
          f"(this machine's {human_bytes(free)} free above disk_reserve_bytes would last "
          f"{free / (rate * per_tip_disk) / 3600:.1f} h; then 507 for every tip)")
    print(f"  a reviewer's pull + decrypt: {per_day * per_tip_review / 3600:.1f} h; "
          f"an OpenPGP smartcard reviewer: {per_day:,.0f} card operations "
          f"({per_day * ASSUMED_CARD_SECONDS / 3600:,.0f} h at an assumed "
          f"{ASSUMED_CARD_SECONDS} s each: time your own card)")


if __name__ == "__main__":
    main()
