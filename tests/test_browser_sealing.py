"""End to end in a real browser: with JavaScript on, only ciphertext leaves it.

Debian's Chromium (Playwright, headless) opens the relay's form, and the tests
check what the README's promises "End to end", "No-JS works", "No lock-in" and
"Little metadata" say: every request body the page
sends is free of the plaintext; the stored blob is a standard age file that the
stock ``age -d`` + ``tar -x`` turn back into exactly what was sent; a dropped
connection resumes without sending again what the server already holds; and the
browser code works without WebCrypto's X25519 and with the JIT off. The no-JS
path (``POST /submit``) is proven in Firefox at Tor Browser's Safest level
(tests/test_firefox_source.py), as are sealing at Standard and Safer and a
resume after the relay restarts; request bodies are only inspected here.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Route

from relay.fingerprint import recipient_set_fingerprint
from relay.server.browser_page import MESSAGES
from relay.server.i18n import translations
from tests.support_browser import (
    JITLESS_ARGS,
    REFUSE_WEBCRYPTO_X25519,
    archive_names,
    chromium_browser,
    extract_plaintext_archive,
    launch_chromium,
    playwright_driver,
    write_files,
)
from tests.support_server import RelayServer, generate_identity, running_relay

__all__ = ["chromium_browser", "playwright_driver"]  # fixtures, imported for pytest

MARKER = "TIPRELAY-PLAINTEXT-MARKER-5c1e"
SEAL_TIMEOUT_MS = 240_000
MiB = 1024 * 1024

pytestmark = pytest.mark.slow
BUNDLE = Path(__file__).resolve().parent.parent / "relay" / "web" / "static" / "dist" / "app.js"


@pytest.fixture(autouse=True, scope="module")
def bundle_is_built() -> None:
    assert BUNDLE.is_file(), "the browser bundle is missing: run scripts/setup or scripts/build-js"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    with running_relay(tmp_path / "relay", {"default_language": "en"}) as server:
        yield server


def make_files(folder: Path) -> list[Path]:
    """Three attachments with the marker inside; the big one is 20 MiB."""
    rng = random.Random(20)
    big = bytearray(rng.randbytes(20 * MiB))
    for position in (0, 7 * MiB + 3, 20 * MiB - 100):
        big[position : position + len(MARKER)] = MARKER.encode()
    files = {
        "Отчёт о встрече.txt": f"Встреча в четверг. {MARKER}\n".encode(),
        "evidence photo.jpg": bytes(big),
        "notes.bin": rng.randbytes(3000) + MARKER.encode() + rng.randbytes(5000),
    }
    return write_files(folder, files)


def open_form(page: Page, relay: RelayServer, language: str = "en") -> None:
    page.goto(f"{relay.url}/?lang={language}")
    page.wait_for_selector("#browser-sealing:not([hidden])")


def page_text(language: str, key: str) -> str:
    """A message of the script, as the relay translates it for the page."""
    return translations(language).gettext(MESSAGES[key])


def submit_and_wait(page: Page, message: str, files: list[Path]) -> None:
    page.fill("#message", message)
    if files:
        page.set_input_files("#attachment", [str(p) for p in files])
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("html[data-sealing-result=stored]", timeout=SEAL_TIMEOUT_MS)


def only_blob(relay: RelayServer) -> Path:
    blobs = relay.blob_paths()
    assert len(blobs) == 1, blobs
    return blobs[0]


def decrypt_and_extract(relay: RelayServer, blob: Path, out_dir: Path) -> Path:
    """Stock ``age -d -i`` then stock ``tar -x``; returns the folder."""
    archive = out_dir.with_suffix(".tar")
    archive.write_bytes(relay.decrypt_with_stock_age(blob))
    extract_plaintext_archive(archive, out_dir)
    return out_dir


def test_js_on_only_ciphertext_leaves_the_browser_and_stock_age_and_tar_read_it(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "to-send")
    message = f"Я хочу уйти. Помогите. {MARKER}\nВторая строка."
    context = chromium_browser.new_context()
    page = context.new_page()
    bodies: list[tuple[str, str, bytes]] = []
    headers_seen: list[str] = []

    def capture(request: Request) -> None:
        body = request.post_data_buffer
        bodies.append((request.method, request.url, body or b""))
        headers_seen.append(json.dumps(request.headers, ensure_ascii=False))

    page.on("request", capture)
    open_form(page, relay, "ru")
    assert page.is_visible("#sealing-mode")
    assert not page.is_visible("#submission-status")
    submit_and_wait(page, message, files)
    assert page.text_content("#sealing-status") == page_text("ru", "done")
    assert page.is_visible("#sealing-status")
    assert not page.is_visible("#message")
    context.close()

    marker = MARKER.encode()
    sent = [(method, url, body) for method, url, body in bodies if body]
    assert sent, "the page sent no request body at all"
    assert all(url.startswith(relay.url + "/api/v1/uploads") for _, url, _ in sent)
    for method, url, body in sent:
        assert marker not in body, f"plaintext marker in a {method} body to {url}"
        assert "Встреча".encode() not in body
    assert not any(MARKER in headers or "evidence" in headers for headers in headers_seen)
    patch_bytes = b"".join(body for method, _, body in sent if method == "PATCH")
    assert patch_bytes.startswith(b"age-encryption.org/v1\n")

    blob = only_blob(relay)
    assert blob.read_bytes() == patch_bytes  # the server stored exactly the ciphertext sent
    out = decrypt_and_extract(relay, blob, tmp_path / "opened")
    assert (out / "message.txt").read_text() == message
    for path in files:
        assert (out / "files" / path.name).read_bytes() == path.read_bytes()
    meta = json.loads((out / "submission.json").read_text())
    assert meta["sealed_by"] == "browser"
    assert meta["language"] == "ru"
    names = archive_names(out.with_suffix(".tar"))
    assert names == ["message.txt"] + [f"files/{p.name}" for p in files] + ["submission.json"]


def test_dropped_patch_resumes_without_resending_what_the_server_holds(
    chromium_browser: Browser, tmp_path: Path
) -> None:
    chunk = 256 * 1024  # the page's upload_chunk_bytes setting
    with running_relay(tmp_path / "relay", {"upload_chunk_bytes": chunk}) as relay:
        resume_after_a_dropped_patch(chromium_browser, relay, chunk, tmp_path)


def resume_after_a_dropped_patch(
    chromium_browser: Browser, relay: RelayServer, chunk: int, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(5 * MiB + 12345)
    attachment = tmp_path / "big.bin"
    attachment.write_bytes(data)
    context = chromium_browser.new_context()
    page = context.new_page()
    delivered: list[tuple[int, int]] = []  # (Upload-Offset, body length) that reached the server
    aborted: list[int] = []

    def route_patch(route: Route) -> None:
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        offset = int(request.headers["upload-offset"])
        if offset > 0 and not aborted:
            aborted.append(offset)
            route.abort("connectionreset")  # the connection drops mid-upload
            return
        delivered.append((offset, len(request.post_data_buffer or b"")))
        route.continue_()

    page.route("**/api/v1/uploads/*", route_patch)
    open_form(page, relay)
    submit_and_wait(page, "resume me", [attachment])
    context.close()

    assert aborted, "no PATCH was dropped"
    blob = only_blob(relay)
    size = blob.stat().st_size
    # Every byte reached the server exactly once: contiguous offsets, no overlap.
    expected_offset = 0
    for offset, length in delivered:
        assert offset == expected_offset
        expected_offset += length
    assert expected_offset == size
    assert sum(length for _, length in delivered) == size
    assert max(length for _, length in delivered) == chunk  # the setting reached the page
    out = decrypt_and_extract(relay, blob, tmp_path / "opened")
    assert (out / "files" / "big.bin").read_bytes() == data


def test_page_shows_the_fingerprint_of_the_recipients_it_encrypts_to(
    chromium_browser: Browser, relay: RelayServer
) -> None:
    context = chromium_browser.new_context()
    page = context.new_page()
    open_form(page, relay)
    shown = page.text_content("#recipient-fingerprint")
    embedded = json.loads(page.text_content("#recipients") or "{}")
    context.close()
    assert embedded["recipients"] == [relay.recipient]
    assert shown == recipient_set_fingerprint([relay.recipient])
    assert embedded["fingerprint"] == shown


def test_sealing_works_without_webcrypto_x25519_and_with_the_jit_off(
    playwright_driver: Playwright, relay: RelayServer, tmp_path: Path
) -> None:
    attachment = tmp_path / "slow.bin"
    attachment.write_bytes(os.urandom(300_000))
    browser = launch_chromium(playwright_driver, JITLESS_ARGS)
    try:
        context = browser.new_context()
        context.add_init_script(REFUSE_WEBCRYPTO_X25519)
        page = context.new_page()
        open_form(page, relay)
        submit_and_wait(page, "jitless, no webcrypto x25519", [attachment])
        refused = page.evaluate("window.__x25519Refused")
        # V8 without a JIT cannot run WebAssembly either: this proves both that the
        # JIT was off and that sealing needs no WebAssembly.
        webassembly = page.evaluate("typeof WebAssembly")
        context.close()
    finally:
        browser.close()
    assert webassembly == "undefined"
    assert refused >= 1, "the page never tried WebCrypto X25519, so the fallback was not tested"
    out = decrypt_and_extract(relay, only_blob(relay), tmp_path / "opened")
    assert (out / "message.txt").read_text() == "jitless, no webcrypto x25519"
    assert (out / "files" / "slow.bin").read_bytes() == attachment.read_bytes()


def test_an_upload_the_relay_refuses_shows_a_clear_message_in_the_page_language(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    # A page whose recipient list was tampered with (one key too many): the relay
    # refuses the upload at the end, stores nothing, and the source is told.
    stranger = generate_identity(tmp_path / "stranger.txt")
    tampered = [relay.recipient, stranger]
    context = chromium_browser.new_context()
    page = context.new_page()

    def tamper(route: Route) -> None:
        response = route.fetch()
        original = json.dumps(
            {
                "fingerprint": recipient_set_fingerprint([relay.recipient]),
                "openpgp_keys": {},
                "recipients": [relay.recipient],
            }
        )
        replaced = json.dumps(
            {
                "fingerprint": recipient_set_fingerprint(tampered),
                "openpgp_keys": {},
                "recipients": tampered,
            }
        )
        body = response.text()
        assert original in body
        route.fulfill(response=response, body=body.replace(original, replaced))

    page.route(relay.url + "/?lang=uk", tamper)
    open_form(page, relay, "uk")
    page.fill("#message", "this will be refused")
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("#sealing-status[data-state=error]", timeout=SEAL_TIMEOUT_MS)
    assert page.text_content("#sealing-status") == page_text("uk", "failed_refused")
    assert page.is_enabled("#submission-form button[type=submit]")
    context.close()
    assert relay.blob_paths() == []
    assert list((relay.data_dir / "uploads").glob("*")) == []


def test_an_empty_submission_is_refused_in_the_page_before_anything_is_sent(
    chromium_browser: Browser, relay: RelayServer
) -> None:
    context = chromium_browser.new_context()
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.method))
    open_form(page, relay, "ru")
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("#sealing-status[data-state=error]")
    assert page.text_content("#sealing-status") == page_text("ru", "empty")
    context.close()
    assert "POST" not in sent and "PATCH" not in sent


def test_after_the_retries_run_out_try_again_resumes_the_same_upload(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    data = random.Random(9).randbytes(3 * MiB)
    attachment = tmp_path / "long.bin"
    attachment.write_bytes(data)
    context = chromium_browser.new_context()
    page = context.new_page()

    def short_retries(route: Route) -> None:
        # The page's retry delays (minutes, for Tor) cut to two quick retries.
        response = route.fetch()
        body = response.text()
        start = body.index('"retryDelays": [')
        end = body.index("]", start) + 1
        route.fulfill(response=response, body=body[:start] + '"retryDelays": [0, 50]' + body[end:])

    # None: not dropped yet; True: offline (from the second PATCH on); False: back.
    offline: dict[str, bool | None] = {"now": None}
    delivered: list[tuple[int, int]] = []

    def network(route: Route) -> None:
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        offset = int(request.headers["upload-offset"])
        if offset > 0 and offline["now"] is not False:
            offline["now"] = True
            route.abort("internetdisconnected")
            return
        delivered.append((offset, len(request.post_data_buffer or b"")))
        route.continue_()

    page.route(relay.url + "/?lang=en", short_retries)
    page.route("**/api/v1/uploads/*", network)
    open_form(page, relay)
    page.fill("#message", "try again")
    page.set_input_files("#attachment", str(attachment))
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("#sealing-resume:not([hidden])", timeout=SEAL_TIMEOUT_MS)
    assert page.text_content("#sealing-status") == page_text("en", "failed_network")
    offline["now"] = False  # the circuit is back
    page.click("#sealing-resume")
    page.wait_for_selector("html[data-sealing-result=stored]", timeout=SEAL_TIMEOUT_MS)
    context.close()

    blob = only_blob(relay)
    expected_offset = 0
    for offset, length in delivered:
        assert offset == expected_offset  # nothing the server held was sent again
        expected_offset += length
    assert expected_offset == blob.stat().st_size
    out = decrypt_and_extract(relay, blob, tmp_path / "opened")
    assert (out / "files" / "long.bin").read_bytes() == data
