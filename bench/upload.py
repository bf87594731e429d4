"""Benchmark: browser-sealed uploads, server side and browser side.

1. A 1 GiB age file (made by the stock ``age`` from random bytes) is uploaded
   with tuspy, the tus project's Python client, in 8 MiB chunks to a real
   ``tiprelay serve`` on 127.0.0.1: throughput, and the server's peak RSS
   sampled every 20 ms (target: under 150 MiB).
2. In-browser sealing (tar + Padmé + age, the page's own bundle) of a 50 MiB
   file in Debian's Chromium: throughput with the JIT on, and with it off as
   at Tor Browser's "Safer" level.

Run (after scripts/setup):

    .venv/bin/python bench/upload.py                 # 1 GiB, 8 MiB chunks, 50 MiB in Chromium
    .venv/bin/python bench/upload.py --size-mib 256 --browser-mib 10
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="age file size (MiB)")
    parser.add_argument("--chunk-mib", type=int, default=8, help="tus chunk size (MiB)")
    parser.add_argument("--browser-mib", type=int, default=50, help="in-browser size (MiB)")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-") as folder:
        work = Path(folder)
        bench_tus_upload(args.size_mib, args.chunk_mib, work)
        if not args.skip_browser:
            bench_browser_sealing(args.browser_mib, work)


if __name__ == "__main__":
    main()
