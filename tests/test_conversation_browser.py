"""The conversation modules in real Chromium, with and without the JIT.

Node already checks every vector (tests/test_conversation_vectors.py); this
runs the bundled modules in the browser engine sources use, including V8
without its JIT (what Tor Browser's "Safer" level does), to show that the
derivation (WebCrypto's native PBKDF2) gives the same keys and stays fast.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Playwright

from tests.support_browser import JITLESS_ARGS, launch_chromium, playwright_driver

__all__ = ["playwright_driver"]

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "conversation.json").read_text("utf-8"))
PAGE_URL = "http://127.0.0.1:9/"
MAX_DERIVATION_SECONDS = 5.0
"""Generous for a loaded 2-core machine; a pure-JS PBKDF2 without JIT takes minutes."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bundle") / "conversation.js"
    subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "esbuild"),
         str(ROOT / "tests" / "js" / "conversation_browser_entry.mjs"),
         "--bundle", "--format=iife", "--platform=browser", "--target=firefox128,chrome120",
         "--log-level=warning", f"--outfile={out}"],
        check=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    return out.read_text("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "jitless"])
def test_chromium_derives_and_checks_exactly_as_python(
    playwright_driver: Playwright, bundle: str, jit: bool
) -> None:
    browser = launch_chromium(playwright_driver, None if jit else JITLESS_ARGS)
    try:
        page = browser.new_context().new_page()
        # Loopback origins are secure contexts (WebCrypto needs one), as onion
        # services are in Tor Browser; the page is served by route, no server.
        page.route(PAGE_URL, lambda route: route.fulfill(
            content_type="text/html", body="<!doctype html><title>vectors</title>"))
        page.goto(PAGE_URL)
        assert page.evaluate("window.isSecureContext && !!crypto.subtle")
        page.add_script_tag(content=bundle)
        result: dict[str, Any] = page.evaluate("v => runConversationVectors(v)", VECTORS)
    finally:
        browser.close()
    vector = VECTORS["codenames"][0]
    assert result["typed"] == [vector["indices"]] * len(vector["typed"])
    assert result["fields"] == vector["fields"]
    assert result["reply_identity"] == vector["reply_identity"]
    assert result["tag"] == vector["slots"][0]["tag"]
    expected = [
        {"label": r["label"], **({"error": r["error"]} if "error" in r else
                                 {"n": r["reply"]["n"], "message": r["reply"]["message"]})}
        for r in VECTORS["replies"] if r["codename"] == 0
    ]  # fmt: skip
    assert result["replies"] == expected
    assert result["seconds"] < MAX_DERIVATION_SECONDS
    print(f"chromium {'jit' if jit else 'jitless'}: derivation {result['seconds'] * 1000:.0f} ms")
