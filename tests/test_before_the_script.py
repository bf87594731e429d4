"""A quick source, before the page's script has taken over (issue 20, part 3).

On a slow Tor circuit the form page is on screen seconds before its deferred
bundle runs. Whatever the source types and clicks then (the codename into
anything that takes text, Enter, every button), no request may carry the
codename, and nothing goes to ``/replies`` or ``/submit``: the no-JS forms live
inside ``<noscript>``, which a browser with JavaScript on never renders, and the
script's own forms stay hidden and disabled until it runs.

A recording proxy (tests/support_holding_proxy.py) holds
``/static/dist/app.js`` until the test releases it, so "before the script" is
exact, not a matter of timing. Then the script takes over and reads the reply
in the browser. Chromium runs as at Tor Browser's Safer level (no JIT); Firefox
ESR with Safer's preferences is driven by tests/js/firefox_quick_source.mjs.
Without JavaScript (Chromium with scripting off) the same page still offers the
server's codename, sends the tip with it and reads the reply on ``POST /replies``
(Safest in Firefox: tests/test_firefox_conversation.py). Where the script runs
but cannot seal, Send goes to the server with no codename; where it cannot
decrypt, the page says how to read replies.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright

from relay.conversation.codename import generate_codename
from relay.conversation.derivation import reply_keys_from_fields
from relay.crypto.signing import SigningKey
from tests.support_browser import JITLESS_ARGS, launch_chromium, playwright_driver
from tests.support_conversation import (
    conversation_relay,
    keys_for,
    put_reply,
    sealed_reply,
    submission_meta,
)
from tests.support_firefox import CONVERSATION_DRIVER, run_firefox_driver, source_spec
from tests.support_holding_proxy import Recorded, holding_proxy
from tests.support_server import RelayServer

__all__ = ["playwright_driver"]  # a fixture, imported for pytest

pytestmark = pytest.mark.slow  # two browsers, each a page or two: 10 to 30 s
BUNDLE = Path(__file__).resolve().parent.parent / "relay" / "web" / "static" / "dist" / "app.js"
QUICK_DRIVER = CONVERSATION_DRIVER.with_name("firefox_quick_source.mjs")
GENUINE = "GENUINE-REPLY come to the station at noon"
WAIT_MS = 60_000
NO_JS_ENDPOINTS = {"/replies", "/replies/attachment", "/replies/delete", "/submit"}


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    assert BUNDLE.is_file(), "the browser bundle is missing: run scripts/build-js"
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    base = tmp_path_factory.mktemp("before-the-script") / "relay"
    settings = {"reply_ring_size": 8, "default_language": "en"}
    with conversation_relay(base, settings, api_key) as server:
        yield server


@pytest.fixture(scope="module")
def safer_chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    """Chromium without its JIT, as Tor Browser's Safer level runs scripts."""
    browser = launch_chromium(playwright_driver, JITLESS_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def codename_with_a_reply(relay: RelayServer, api_key: SigningKey) -> str:
    """A fresh codename whose conversation holds one genuine reply (slot 1)."""
    words = str(generate_codename())
    keys = keys_for(relay, words)
    put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, GENUINE))
    return words


def forms_of(words: str) -> list[bytes]:
    """The codename as any form encoding or script could send it."""
    split = words.split()
    joined = [" ".join(split), "+".join(split), "%20".join(split), "%2B".join(split)]
    return [text.encode() for text in joined + [text.upper() for text in joined]]


def carrying(requests: list[Recorded], words: str) -> list[str]:
    return [
        f"{r.method} {r.path_qs}"
        for r in requests
        if any(form in r.shown_to_network() for form in forms_of(words))
    ]


def form_posts(requests: list[Recorded]) -> list[str]:
    """Requests to the no-JS endpoints (the JS path only uses /api/ and /static/)."""
    return [
        f"{r.method} {r.path_qs}"
        for r in requests
        if r.path_qs.split("?")[0] in NO_JS_ENDPOINTS
    ]


def try_everything(page: Page, words: str) -> dict[str, int | bool]:
    """What a quick source could do: the codename into every visible text field,
    Enter in each, then a click on every visible enabled button. Counts what it
    did, and stops at once if the page navigated (a form was submitted)."""
    done: dict[str, int | bool] = {"typed": 0, "clicked": 0, "navigated": False}

    def navigated() -> bool:
        done["navigated"] = page.evaluate("window.__sameDocument") is not True
        return bool(done["navigated"])

    for field in page.locator("input:visible, textarea:visible").all():
        kind = field.get_attribute("type") or "text"
        if kind in {"file", "hidden", "checkbox", "radio", "submit", "button"}:
            continue
        field.fill(words)
        field.press("Enter")
        done["typed"] = int(done["typed"]) + 1
        if navigated():
            return done
    for button in page.locator("button:visible, input[type=submit]:visible").all():
        if button.is_enabled(timeout=1000):
            button.click()
            done["clicked"] = int(done["clicked"]) + 1
            if navigated():
                return done
    return done


def test_in_chromium_at_safer_nothing_carries_the_codename_before_the_script(
    relay: RelayServer, api_key: SigningKey, safer_chromium: Browser
) -> None:
    words = codename_with_a_reply(relay, api_key)
    context = safer_chromium.new_context()
    page = context.new_page()
    with holding_proxy(relay.url) as proxy:
        page.goto(f"{proxy.url}/?lang=en", wait_until="commit")
        page.wait_for_selector("#js-replies", state="attached")  # the page is parsed
        page.evaluate("window.__sameDocument = true")
        attempts = try_everything(page, words)
        before = proxy.snapshot()
        assert attempts["navigated"] is False, (attempts, form_posts(before))
        assert proxy.held_requests == 1  # the bundle was asked for and is still held
        assert attempts["typed"] >= 1  # the message box took the codename
        assert attempts["clicked"] == 0  # nothing to click that sends
        assert form_posts(before) == [] and carrying(before, words) == []

        proxy.release()
        page.wait_for_selector("html[data-conversations=browser]", timeout=WAIT_MS)
        assert page.evaluate("window.__sameDocument") is True  # no form was submitted
        page.fill("#js-read-codename", words.upper())
        page.press("#js-read-codename", "Enter")
        page.wait_for_selector("#js-replies[data-state=shown]", timeout=WAIT_MS)
        shown = page.text_content("#js-replies") or ""
        everything = proxy.snapshot()
    context.close()
    assert "Decrypted in your browser" in shown and GENUINE in shown
    assert any(r.path_qs == "/api/v1/replies/fetch" for r in everything)
    assert form_posts(everything) == []
    assert carrying(everything, words) == []


def test_in_firefox_at_safer_nothing_carries_the_codename_before_the_script(
    relay: RelayServer, api_key: SigningKey, tmp_path: Path
) -> None:
    words = codename_with_a_reply(relay, api_key)
    with holding_proxy(relay.url) as proxy:

        def release_when_tried(event: dict[str, Any], driver: subprocess.Popen[str]) -> None:
            if event["event"] != "tried":
                return
            found["before"] = proxy.snapshot()
            found["held"] = proxy.held_requests
            proxy.release()

        found: dict[str, Any] = {}
        spec = source_spec(f"{proxy.url}/?lang=en", "safer", tmp_path / "profile", "", [])
        spec["codename"] = words
        result = run_firefox_driver(QUICK_DRIVER, spec, release_when_tried)
        everything = proxy.snapshot()
    tried = next(e for e in result["events"] if e["event"] == "tried")
    assert found["held"] == 1 and tried["typed"] >= 1 and tried["clicked"] == 0
    assert form_posts(found["before"]) == [] and carrying(found["before"], words) == []
    assert result["sameDocument"] is True
    assert "Decrypted in your browser" in result["shown"] and GENUINE in result["shown"]
    assert result["webAssembly"] == "undefined"  # Safer: no WebAssembly
    assert result["pageErrors"] == []
    assert any(r.path_qs == "/api/v1/replies/fetch" for r in everything)
    assert form_posts(everything) == []
    assert carrying(everything, words) == []


def test_with_javascript_off_the_noscript_forms_still_work(
    relay: RelayServer, api_key: SigningKey, safer_chromium: Browser
) -> None:
    context = safer_chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{relay.url}/?lang=en")
    words = page.input_value("#codename")  # the server's codename, in <noscript>
    assert len(words.split()) == 8
    assert page.locator("#js-read-replies-form").is_hidden()
    before = set(relay.blob_paths())
    page.fill("#message", "NO-JS-TIP with a codename")
    with page.expect_navigation():
        page.click("#submission-form button[type=submit]")
    # The answer to the POST itself (the codename never goes into a URL) shows it once more.
    assert page.url == f"{relay.url}/submit"
    assert (page.text_content("#sent-codename ol") or "").split() == words.split()
    fresh = [path for path in relay.blob_paths() if path not in before]
    assert len(fresh) == 1
    meta = submission_meta(relay, fresh[0])
    keys = keys_for(relay, words)
    assert meta["sealed_by"] == "server"
    # Sealed without a derivation (the codename's indices); the team derives the same keys.
    assert set(meta["conversation"]) == {"kdf", "codename_indices", "relay_salt"}
    assert reply_keys_from_fields(meta["conversation"]).to_fields() == (
        keys.reply_keys().to_fields()
    )

    put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, GENUINE))
    page.goto(f"{relay.url}/?lang=en")
    page.fill("#read-codename", words)
    with page.expect_navigation():
        page.press("#read-codename", "Enter")
    assert page.url == f"{relay.url}/replies?lang=en"
    shown = page.text_content("main") or ""
    assert "Decrypted by the server" in shown and GENUINE in shown
    context.close()


def test_where_the_browser_cannot_decrypt_the_page_says_how_to_read_replies(
    relay: RelayServer, safer_chromium: Browser
) -> None:
    """No WebCrypto (an insecure context): no form here can read, none sends the codename."""
    context = safer_chromium.new_context()
    context.add_init_script(
        "Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined });"
    )
    page = context.new_page()
    page.goto(f"{relay.url}/?lang=en")
    page.wait_for_selector("#js-replies-unavailable:not([hidden])")
    assert "turn JavaScript off" in (page.text_content("#js-replies-unavailable") or "")
    assert page.locator("#js-read-replies-form").is_hidden()
    assert page.locator("[name=codename]").count() == 0
    context.close()


def test_where_the_browser_cannot_seal_send_goes_to_the_server_without_a_codename(
    relay: RelayServer, safer_chromium: Browser
) -> None:
    """The honest fallback: the script runs, cannot seal, enables Send for the
    server path the page describes; the tip carries no conversation."""
    context = safer_chromium.new_context()
    context.add_init_script("delete Blob.prototype.stream;")  # canSealInBrowser() is false
    page = context.new_page()
    page.goto(f"{relay.url}/?lang=en")
    page.wait_for_selector("#js-send:not([hidden]) button:enabled")
    assert page.is_visible("#submission-status")  # "the form goes to the server, which encrypts"
    assert page.is_hidden("#browser-sealing") and page.is_hidden("#codename-js")
    assert page.is_visible("#js-replies-unavailable")
    before = set(relay.blob_paths())
    page.fill("#message", "FALLBACK-TIP")
    with page.expect_navigation():
        page.click("#submission-form button[type=submit]")
    context.close()
    assert "/received" in page.url
    fresh = [path for path in relay.blob_paths() if path not in before]
    assert len(fresh) == 1
    meta = submission_meta(relay, fresh[0])
    assert meta["sealed_by"] == "server" and "conversation" not in meta
