"""The conversation pages with JavaScript on, in Debian's Chromium (issue 9): the
codename made and shown in the browser, the tip sealed with its conversation
fields, replies read, checked and deleted in the browser, a follow-up sealed
there, and neither the codename nor any plaintext in a request.

A real ``tiprelay serve`` on 127.0.0.1 with a conversation salt; replies are put
through the signed reviewer API (tests/support_conversation.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request

from relay.conversation.codename import fold_codename, generate_codename
from relay.conversation.slots import slot_tag
from relay.crypto.signing import SigningKey
from tests.support_browser import chromium_browser, playwright_driver
from tests.support_conversation import (
    conversation_relay,
    files_containing,
    keys_for,
    put_reply,
    sealed_reply,
    secrets_of,
    submission_meta,
)
from tests.support_reviewer import send
from tests.support_server import RelayServer

__all__ = ["chromium_browser", "playwright_driver"]  # fixtures, imported for pytest

pytestmark = pytest.mark.slow
RING_SLOTS = 8
BUNDLE = Path(__file__).resolve().parent.parent / "relay" / "web" / "static" / "dist" / "app.js"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    assert BUNDLE.is_file(), "the browser bundle is missing: run scripts/build-js"
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    base = tmp_path_factory.mktemp("conversation-browser") / "relay"
    settings = {"reply_ring_size": RING_SLOTS, "default_language": "en"}
    with conversation_relay(base, settings, api_key) as server:
        yield server


def open_form(page: Page, relay: RelayServer) -> None:
    page.goto(f"{relay.url}/?lang=en")
    page.wait_for_selector("#codename-js:not([hidden])")


def send_tip(page: Page, message: str) -> None:
    page.fill("#message", message)
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("html[data-sealing-result=stored]", timeout=WAIT_MS)


def new_blob(relay: RelayServer, before: set[Path]) -> Path:
    fresh = [path for path in relay.blob_paths() if path not in before]
    assert len(fresh) == 1, fresh
    return fresh[0]


def read_replies(page: Page, typed: str) -> None:
    page.fill("#js-read-codename", typed)
    page.click("#js-read-replies-form button[type=submit]")
    page.wait_for_selector("#js-replies[data-state=shown]", timeout=WAIT_MS)


def test_js_round_trip_nothing_of_the_conversation_leaves_the_browser(
    chromium_browser: Browser, relay: RelayServer, api_key: SigningKey
) -> None:
    context = chromium_browser.new_context(accept_downloads=True)
    requests: list[tuple[str, str, bytes]] = []

    def capture(request: Request) -> None:
        headers = json.dumps(request.headers).encode()
        requests.append((request.method, request.url, (request.post_data_buffer or b"") + headers))

    context.on("request", capture)
    page = context.new_page()
    open_form(page, relay)
    words = page.input_value("#js-codename")
    assert len(words.split()) == 8 and fold_codename(words).checked  # 7 words + check word
    assert page.locator("#js-codename-words li").all_text_contents() == words.split()
    assert page.locator("#codename-js").get_attribute("hidden") is None
    assert page.get_attribute("#js-codename", "name") is None  # no form ever sends it
    before = set(relay.blob_paths())
    send_tip(page, "BROWSER-TIP I need to leave")
    # The confirmation: the codename once more, and the no-JS page's advice.
    assert page.locator("#js-sent-codename-words li").all_text_contents() == words.split()
    assert "New Identity" in (page.text_content("#js-after-sending") or "")
    assert page.is_visible("#js-sent-codename") and page.is_visible("#js-after-sending")
    keys = keys_for(relay, words)
    meta = submission_meta(relay, new_blob(relay, before))
    assert meta["sealed_by"] == "browser"
    assert meta["conversation"] == keys.reply_keys().to_fields()  # Python and JS agree

    put_reply(relay, api_key, keys, 1, sealed_reply(
        relay, keys, 1, 'GENUINE-ONE <a href="https://evil.example/">click</a>',
        [("route.txt", b"MAP-BYTES")],
    ))  # fmt: skip
    put_reply(relay, api_key, keys, 3, sealed_reply(relay, keys, 3, "GENUINE-THREE"))
    put_reply(relay, api_key, keys, 2, sealed_reply(
        relay, keys, 2, "FORGED-NO-AUTH-KEY", auth_key=bytes(32)
    ))  # fmt: skip
    put_reply(relay, api_key, keys, 5, sealed_reply(relay, keys, 4, "FORGED-MOVED-SLOT"))
    other = keys_for(relay, str(generate_codename()))
    put_reply(relay, api_key, keys, 6, sealed_reply(
        relay, keys, 6, "FORGED-OTHER-CONVERSATION",
        auth_key=other.auth_key, conversation_id=other.conversation_id,
    ))  # fmt: skip

    page = context.new_page()
    open_form(page, relay)
    page.fill("#js-read-codename", " ".join(words.split()[:3]) + " notaword")
    page.click("#js-read-replies-form button[type=submit]")
    page.wait_for_selector("#js-replies[data-state=codename_error]")
    assert "Word 4 of what you typed" in (page.text_content("#js-replies") or "")
    written = words.split()  # a wrong check word: always caught, whatever the words
    wrong = "abacus" if written[7] != "abacus" else "zoom"
    page.fill("#js-read-codename", " ".join([*written[:7], wrong]))
    page.click("#js-read-replies-form button[type=submit]")
    page.wait_for_selector("#js-replies[data-state=codename_error]")
    assert "Check the order and spelling" in (page.text_content("#js-replies") or "")
    unused = generate_codename()  # no replies: the page says whether it could check it
    read_replies(page, " ".join(unused.words))
    assert "This codename has seven words" in (page.text_content("#js-no-replies") or "")
    read_replies(page, str(unused))
    assert "Your codename is typed correctly" in (page.text_content("#js-no-replies") or "")

    read_replies(page, "  " + "   ".join(word.upper() for word in words.split()) + " ")
    shown = page.text_content("#js-replies") or ""
    assert "Decrypted in your browser" in shown
    assert shown.index("GENUINE-ONE") < shown.index("GENUINE-THREE")
    assert "Reply 1, written on 2025-03-04" in shown
    assert "Missing here: 1 earlier replies" in shown
    assert "could not be authenticated and were not shown: 3." in shown
    assert "FORGED" not in page.content()
    assert page.locator("#js-replies a").count() == 0  # text, never links
    assert '<a href="https://evil.example/">click</a>' in shown

    with page.expect_download() as download_info:
        page.click("#js-replies button:has-text('Download route.txt')")
    download = download_info.value
    assert download.suggested_filename == "route.txt"
    assert Path(download.path()).read_bytes() == b"MAP-BYTES"

    page.click("#js-replies article[data-n='1'] .delete-reply")
    page.wait_for_selector("#js-replies :text('The reply was deleted.')")
    index = send(
        relay.url,
        "POST",
        "/api/v1/replies/index",
        {"Content-Type": "application/json"},
        json.dumps(
            {"tags": [slot_tag(keys.slot_key, s).hex() for s in range(RING_SLOTS)]}
        ).encode(),
    ).json()
    assert isinstance(index, dict)
    assert index["slots"][1] is None and index["slots"][3] is not None

    assert page.input_value("#js-codename") == words  # the next tip continues it
    before = set(relay.blob_paths())
    send_tip(page, "BROWSER-FOLLOW-UP thank you")
    follow_up = submission_meta(relay, new_blob(relay, before))
    assert follow_up["conversation"] == meta["conversation"]

    kept = page.evaluate(
        """async () => [document.cookie, localStorage.length, sessionStorage.length,
                        (await indexedDB.databases()).length, (await caches.keys()).length]"""
    )
    assert kept == ["", 0, 0, 0, 0]
    context.close()

    secrets = secrets_of(keys, words.split())
    texts = [b"GENUINE-", b"FORGED-", b"MAP-BYTES", b"BROWSER-TIP", b"BROWSER-FOLLOW-UP"]
    for method, url, body in requests:
        assert not [s[:12] for s in secrets + texts if s in body], (method, url)
        assert not [s for s in secrets if s in url.encode()], url
        assert "%20".join(words.split()) not in url
    assert any(url.endswith("/api/v1/replies/fetch") for _, url, _ in requests)
    for folder in (relay.data_dir, relay.tmp_dir):
        assert files_containing(folder, secrets + texts) == []
    log = relay.log_text().encode()
    assert [s[:12] for s in secrets + texts if s in log] == []
