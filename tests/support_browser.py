"""Debian's Chromium driven by Playwright, for the browser-sealing tests.

Never downloads a browser: it launches ``/usr/bin/chromium`` headless with the
flags that keep it quiet and offline (no component updates, no sync, no
background networking). ``chromium_browser`` is module-scoped: one browser
process per test module, a fresh context per test; ``playwright_driver`` lets a
test launch another (e.g. with the JIT off).

    from tests.support_browser import chromium_browser, playwright_driver
"""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
JITLESS_ARGS = ["--js-flags=--jitless"]
"""V8 without its JIT compilers, as Tor Browser's "Safer" level runs scripts."""

REFUSE_WEBCRYPTO_X25519 = """
(() => {
  window.__x25519Refused = 0;
  const subtle = crypto.subtle;
  const refuse = (original) => function (...args) {
    const text = JSON.stringify(args.map((a) => (a && a.name) || a));
    if (text.includes("X25519")) {
      window.__x25519Refused += 1;
      return Promise.reject(new DOMException("X25519 is not supported", "NotSupportedError"));
    }
    return original.apply(subtle, args);
  };
  for (const name of ["importKey", "generateKey", "deriveBits"]) {
    subtle[name] = refuse(subtle[name]);
  }
})();
"""
"""An init script: WebCrypto refuses X25519 (as Firefox ESR 128, Tor Browser 14's
base, does), and ``window.__x25519Refused`` counts how often the page tried."""


def launch_chromium(playwright: Playwright, extra_args: list[str] | None = None) -> Browser:
    """Debian's Chromium, headless, with the quiet offline flags."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup (Debian package chromium)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS + list(extra_args or []),
    )


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver, once per test module (it cannot run twice at a time)."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium_browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One Chromium for the test module."""
    browser = launch_chromium(playwright_driver)
    try:
        yield browser
    finally:
        browser.close()


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name: content) into ``folder``, for a page to attach; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def extract_plaintext_archive(archive: Path, out_dir: Path) -> None:
    """Unpack a decrypted submission with the stock ``tar`` (what a reviewer would run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out_dir)], check=True)


def archive_names(archive: Path) -> list[str]:
    """The entry names of a plaintext submission archive, in order."""
    with tarfile.open(archive) as tar:
        return tar.getnames()
