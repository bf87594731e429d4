"""Benchmark: browser-sealed uploads, server side and browser side.

1. A 1 GiB age file (made by the stock ``age`` from random bytes) is uploaded
   with tuspy, the tus project's Python client, in 8 MiB chunks to a real
   ``tiprelay serve`` on 127.0.0.1: throughput, and the server's peak RSS
   sampled every 20 ms (target: under 150 MiB).
2. In-browser sealing (tar + Padmé + age, the page's own bundle) of a 50 MiB
   file in Debian's Chromium: throughput with the JIT on, and with it off as
   at Tor Browser's "Safer" level.
3. The same in Debian's Firefox ESR at Tor Browser's "Standard" and "Safer"
   levels (tests/support_firefox.py has their preferences), with one sealing
   Web Worker and with N (what the page picks: the reported cores, at most
   seal_workers_max): MiB/s and the ratio (target at Safer: at least 1.8x on a
   2-core machine). Then the peak memory of Firefox's processes while it seals
   a 200 MiB attachment at Standard with N workers (the file is read from disk,
   as a source's would be). And the longest time the page's own thread was kept
   from running (a frozen page) with no worker, one, and N.

Run (after scripts/setup):

    .venv/bin/python bench/upload.py                 # 1 GiB, 8 MiB chunks, 50 MiB in Chromium
    .venv/bin/python bench/upload.py --size-mib 256 --browser-mib 10
    .venv/bin/python bench/upload.py --only-firefox --firefox-mib 32 --memory-mib 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from tusclient import client as tus_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support_browser import JITLESS_ARGS, launch_chromium  # noqa: E402
from tests.support_firefox import (  # noqa: E402
    FIREFOX,
    QUIET_OFFLINE_PREFS,
    SECURITY_LEVELS,
    kill_firefox_left_behind,
)
from tests.support_node import NODE  # noqa: E402
from tests.support_process import spawned  # noqa: E402
from tests.support_server import RelayServer, running_relay  # noqa: E402

MiB = 1024 * 1024
RSS_TARGET_MIB = 150


class PeakRss:
    """Samples a process's resident memory in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def make_age_file(relay: RelayServer, size: int, out: Path) -> None:
    """``size`` random bytes piped straight into the stock ``age`` (never on disk in clear)."""
    with out.open("wb") as sink:
        source = subprocess.Popen(
            ["head", "-c", str(size), "/dev/urandom"], stdout=subprocess.PIPE
        )
        subprocess.run(["age", "-r", relay.recipient], stdin=source.stdout, stdout=sink, check=True)
        assert source.stdout is not None
        source.stdout.close()
        source.wait()


def bench_tus_upload(size_mib: int, chunk_mib: int, work: Path) -> None:
    with running_relay(work / "relay", {"max_submission_bytes": 4 * 1024 * MiB}) as relay:
        sealed = work / "sealed.age"
        make_age_file(relay, size_mib * MiB, sealed)
        length = sealed.stat().st_size
        assert relay.proc is not None
        idle_rss = psutil.Process(relay.proc.pid).memory_info().rss
        with PeakRss(relay.proc.pid) as rss, sealed.open("rb") as stream:
            started = time.perf_counter()
            uploader = tus_client.TusClient(relay.url + "/api/v1/uploads").uploader(
                file_stream=stream, chunk_size=chunk_mib * MiB
            )
            uploader.upload()
            elapsed = time.perf_counter() - started
        (blob,) = relay.blob_paths()
        assert blob.stat().st_size == length
        sealed.unlink()
    print(f"tus upload (tuspy, {chunk_mib} MiB chunks) of a {length / MiB:.0f} MiB age file:")
    print(f"  time {elapsed:.1f} s, throughput {length / MiB / elapsed:.1f} MiB/s")
    verdict = "ok" if rss.peak < RSS_TARGET_MIB * MiB else "OVER TARGET"
    print(
        f"  server RSS: idle {idle_rss / MiB:.1f} MiB, peak {rss.peak / MiB:.1f} MiB "
        f"(target < {RSS_TARGET_MIB} MiB: {verdict})"
    )


SEAL_IN_PAGE = """
async ([sizeMiB, recipients]) => {
  const piece = new Uint8Array(65536);
  const parts = [];
  for (let i = 0; i < sizeMiB * 16; i++) {
    crypto.getRandomValues(piece);
    parts.push(piece.slice());
  }
  const file = new File(parts, "bench.bin");
  const started = performance.now();
  const sealed = await tiprelaySeal.sealSubmission({
    message: "bench", files: [file], language: "en", day: "2026-01-01", recipients,
    onPlaintext: () => {},
  });
  const reader = sealed.stream.getReader();
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
  }
  return { seconds: (performance.now() - started) / 1000, total, expected: sealed.size };
}
"""


def bench_browser_sealing(size_mib: int, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    with running_relay(work / "browser-relay") as relay, sync_playwright() as playwright:
        for label, extra in (("JIT on", []), ("JIT off (--jitless)", JITLESS_ARGS)):
            browser = launch_chromium(playwright, extra)
            try:
                page = browser.new_page()
                page.goto(relay.url + "/?lang=en")
                page.wait_for_function("typeof tiprelaySeal !== 'undefined'")
                result = page.evaluate(SEAL_IN_PAGE, [size_mib, [relay.recipient]])
            finally:
                browser.close()
            assert result["total"] == result["expected"]
            print(
                f"in-browser sealing of {size_mib} MiB in Chromium, {label}: "
                f"{result['seconds']:.2f} s, {size_mib / result['seconds']:.1f} MiB/s"
            )


FIREFOX_SEAL_DRIVER = ROOT / "bench" / "firefox_seal.mjs"
FIREFOX_RUN_SECONDS = 3600.0


class FirefoxTreeRss:
    """Peak resident memory of a Firefox process tree: all processes together,
    and the largest one (the page's content process, in practice)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.root: psutil.Process | None = None
        self.peak_total = 0
        self.peak_process = 0
        self.cpu_seconds = 0.0  # user + system time of the whole tree, so far
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.root is not None:
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                sizes = []
                for process in processes:
                    try:
                        sizes.append(process.memory_info().rss)
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            cpu = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                    cpu += times.user + times.system
                except psutil.NoSuchProcess:
                    continue
            self.cpu_seconds = max(self.cpu_seconds, cpu)
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_process = max(self.peak_process, max(sizes, default=0))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def firefox_sealing_runs(
    relay: RelayServer, level: str, attachment: Path, runs: list[int], work: Path
) -> tuple[list[dict[str, float]], FirefoxTreeRss]:
    """Seal ``attachment`` in Firefox at ``level`` once per entry of ``runs`` (max workers)."""
    profile = work / f"firefox-{level}-{len(os.listdir(work))}"
    profile.mkdir()
    spec = {
        "executablePath": FIREFOX,
        "profileDir": str(profile),
        "prefs": {**QUIET_OFFLINE_PREFS, **SECURITY_LEVELS[level]},
        "url": relay.url + "/?lang=en",
        "file": str(attachment),
        "runs": runs,
    }
    events: list[dict[str, object]] = []
    rss = FirefoxTreeRss()
    try:
        with spawned(
            [NODE, FIREFOX_SEAL_DRIVER, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        ) as driver:
            assert driver.stdout is not None
            for line in driver.stdout:
                event = json.loads(line)
                events.append(event)
                if event["event"] == "browser":
                    rss.watch(int(str(event["pid"])))
            returncode = driver.wait(timeout=FIREFOX_RUN_SECONDS)
    finally:
        rss.stop()
        kill_firefox_left_behind(events)
    results = [event for event in events if event["event"] == "run"]
    if returncode != 0 or len(results) != len(runs):
        raise RuntimeError(f"the Firefox sealing driver failed ({returncode}): {events}")
    for result in results:
        assert result["total"] == result["expected"], result
    return results, rss  # type: ignore[return-value]


def bench_firefox_sealing(size_mib: int, memory_mib: int, workers_max: int, work: Path) -> None:
    attachment = work / "firefox-bench.bin"
    with attachment.open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(MiB))
    settings = {"seal_workers_max": workers_max}
    with running_relay(work / "firefox-relay", settings) as relay:
        for level in ("standard", "safer"):
            # One browser per run, so that the CPU time each used can be told apart.
            (one,), one_tree = firefox_sealing_runs(relay, level, attachment, [1], work)
            (many,), many_tree = firefox_sealing_runs(relay, level, attachment, [workers_max], work)
            (inline,), _ = firefox_sealing_runs(relay, level, attachment, [0], work)
            assert inline["workersUsed"] == 0, inline
            one_rate = size_mib / one["seconds"]
            many_rate = size_mib / many["seconds"]
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                f"in-browser sealing of {size_mib} MiB in Firefox ESR at {level} "
                f"(load average {load}): "
                f"1 worker {one_rate:.2f} MiB/s; {many['workersUsed']} workers "
                f"(hardwareConcurrency {many['hardwareConcurrency']}, cores here "
                f"{os.cpu_count()}) {many_rate:.2f} MiB/s; ratio {many_rate / one_rate:.2f}x; "
                f"Firefox CPU time {one_tree.cpu_seconds:.1f} s and {many_tree.cpu_seconds:.1f} s "
                f"(start-up included)"
            )
            print(
                f"  longest stall of the page's own thread while sealing at {level}: "
                f"no worker (page's thread, {size_mib / inline['seconds']:.2f} MiB/s) "
                f"{inline['longestStallMs']} ms; 1 worker {one['longestStallMs']} ms; "
                f"{many['workersUsed']} workers {many['longestStallMs']} ms"
            )
        if memory_mib:
            big = work / "firefox-memory.bin"
            with big.open("wb") as out:
                for _ in range(memory_mib):
                    out.write(os.urandom(MiB))
            results, rss = firefox_sealing_runs(relay, "standard", big, [workers_max], work)
            print(
                f"sealing a {memory_mib} MiB attachment in Firefox ESR at standard "
                f"({results[0]['workersUsed']} workers, {memory_mib / results[0]['seconds']:.1f} "
                f"MiB/s): peak RSS of all Firefox processes {rss.peak_total / MiB:.0f} MiB, "
                f"of the largest one {rss.peak_process / MiB:.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="age file size (MiB)")
    parser.add_argument("--chunk-mib", type=int, default=8, help="tus chunk size (MiB)")
    parser.add_argument("--browser-mib", type=int, default=50, help="in-browser size (MiB)")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--firefox-mib", type=int, default=32, help="Firefox sealing size (MiB)")
    parser.add_argument(
        "--memory-mib", type=int, default=200, help="Firefox peak-memory size (MiB; 0: skip)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="N: the relay's seal_workers_max for the N run"
    )
    parser.add_argument(
        "--only-firefox", action="store_true", help="only the Firefox sealing figures"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-") as folder:
        work = Path(folder)
        if not args.only_firefox:
            bench_tus_upload(args.size_mib, args.chunk_mib, work)
            if not args.skip_browser:
                bench_browser_sealing(args.browser_mib, work)
        if not args.skip_browser:
            bench_firefox_sealing(args.firefox_mib, args.memory_mib, args.workers, work)


if __name__ == "__main__":
    main()
