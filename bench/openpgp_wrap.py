"""Benchmark: the OpenPGP wrapper in the browser (dist/openpgp-wrap.js).

Prints its size (raw, gzip, brotli: what the static route sends) next to the
page's own script, and, in Debian's Chromium with the JIT on and off (as at Tor
Browser's "Safer" level), the time to import the wrapper and to wrap one file
key for a reviewer's key: the first wrap (which reads the armored key) and the
median of the next ones. Keys: ed25519 + cv25519 and RSA-3072, made by gpg.
With the JIT off, also with WebCrypto's X25519 refused, as in Tor Browser 14.

Run (after scripts/setup):

    .venv/bin/python bench/openpgp_wrap.py
    .venv/bin/python bench/openpgp_wrap.py --rounds 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support_browser import (  # noqa: E402
    JITLESS_ARGS,
    REFUSE_WEBCRYPTO_X25519,
    launch_chromium,
)
from tests.support_openpgp import make_gpg_reviewer, remove_gpg_home  # noqa: E402
from tests.support_server import running_relay  # noqa: E402

DIST = ROOT / "relay" / "web" / "static" / "dist"
WRAPPER_PATH = "/static/dist/openpgp-wrap.js"

# Runs in the page: import the wrapper, then wrap a fresh file key `rounds` times.
MEASURE = """
async ({path, armored, fingerprint, rounds}) => {
  const started = performance.now();
  const wrapper = await import(path);
  const loaded = performance.now();
  const times = [];
  for (let round = 0; round < rounds; round++) {
    const fileKey = crypto.getRandomValues(new Uint8Array(16));
    const before = performance.now();
    await wrapper.wrapFileKeyForOpenpgp(fileKey, armored, fingerprint);
    times.push(performance.now() - before);
  }
  return {load: loaded - started, times};
}
"""


def sizes() -> None:
    print("size of the scripts (bytes on the wire: raw / gzip / brotli)")
    for name in ("openpgp-wrap.js", "app.js", "seal-worker.js"):
        raw = (DIST / name).stat().st_size
        gz = (DIST / f"{name}.gz").stat().st_size
        br = (DIST / f"{name}.br").stat().st_size
        print(f"  {name:17} {raw / 1000:7.1f} KB / {gz / 1000:6.1f} KB / {br / 1000:6.1f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="wraps per key and browser")
    arguments = parser.parse_args()
    sizes()
    reviewers = {kind: make_gpg_reviewer("bench", kind) for kind in ("cv25519", "rsa3072")}
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            running_relay(Path(folder) / "relay") as relay,
            sync_playwright() as playwright,
        ):
            print(f"\nChromium: import the wrapper, wrap a file key ({arguments.rounds} rounds)")
            runs = (
                ("JIT on", [], False),
                ("JIT off", JITLESS_ARGS, False),
                # Tor Browser 14 at Safer: no JIT, and no X25519 in WebCrypto
                # (Firefox ESR 128), so cv25519 runs on OpenPGP.js's pure-JS curve.
                ("JIT off, no WebCrypto X25519", JITLESS_ARGS, True),
            )
            for label, flags, refuse_x25519 in runs:
                browser = launch_chromium(playwright, flags)
                try:
                    for kind, reviewer in reviewers.items():
                        context = browser.new_context()
                        if refuse_x25519:
                            context.add_init_script(REFUSE_WEBCRYPTO_X25519)
                        page = context.new_page()
                        page.goto(relay.url + "/?lang=en")
                        result = page.evaluate(
                            MEASURE,
                            {
                                "path": WRAPPER_PATH,
                                "armored": reviewer.public_key.decode(),
                                "fingerprint": reviewer.fingerprint,
                                "rounds": arguments.rounds,
                            },
                        )
                        context.close()
                        first, *rest = result["times"]
                        median = statistics.median(rest) if rest else first
                        print(
                            f"  {label:29} {kind:8} import {result['load']:7.1f} ms   "
                            f"first wrap {first:7.1f} ms   then {median:6.1f} ms (median)"
                        )
                finally:
                    browser.close()
    finally:
        for reviewer in reviewers.values():
            remove_gpg_home(reviewer.home)


if __name__ == "__main__":
    main()
