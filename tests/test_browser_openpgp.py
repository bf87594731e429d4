"""OpenPGP reviewers on the browser path: the page wraps the file key with OpenPGP.js.

What the page writes must be what the relay accepts and what gpg opens. Node
runs the page's own header code (relay/web/js/age_header.js) with the OpenPGP
wrapper the relay serves (the built dist/openpgp-wrap.js), and the relay's own
parser (relay/crypto/openpgp_packets.py) reads the stanza; a real gpg, in the
reviewer's test home, gives back the 16-byte file key. Then the whole path in
Debian's Chromium, with the JIT on and off: a relay with one age and one
OpenPGP reviewer stores the browser-sealed file, the age reviewer opens it with
the stock ``age``, the OpenPGP reviewer with ``tiprelay decrypt --gpg``, and
both read the same bytes. The usual page, on a relay without OpenPGP
reviewers, never asks for the wrapper.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request

from relay.crypto.format import Header, read_header, verify_header_mac
from relay.crypto.openpgp_identity import GpgIdentity
from relay.crypto.openpgp_keys import inspect_public_key
from relay.crypto.openpgp_packets import (
    TAG_PKESK,
    TAG_SEIPD,
    read_packets,
    read_session_key_recipient,
)
from relay.fingerprint import recipient_set_fingerprint
from tests.support_browser import (
    JITLESS_ARGS,
    REFUSE_WEBCRYPTO_X25519,
    chromium_browser,
    extract_plaintext_archive,
    launch_chromium,
    playwright_driver,
    write_files,
)
from tests.support_firefox import run_firefox_source, source_spec
from tests.support_node import NODE
from tests.support_openpgp import (
    GpgReviewer,
    add_openpgp_reviewer,
    gpg_reviewer_home,
)
from tests.support_process import run
from tests.support_server import RelayServer, new_relay, running_relay

__all__ = ["chromium_browser", "playwright_driver"]  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER_HELPER = ROOT / "tests" / "js" / "openpgp_header.mjs"
WRAPPER = ROOT / "relay" / "web" / "static" / "dist" / "openpgp-wrap.js"
WRAPPER_URL_PATH = "/static/dist/openpgp-wrap.js"
TIPRELAY = Path(sys.executable).with_name("tiprelay")
SEAL_TIMEOUT_MS = 240_000
MiB = 1024 * 1024
AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    """A reviewer whose key (ed25519 + cv25519) is in a test gpg home."""
    with gpg_reviewer_home() as reviewer:
        yield reviewer


@pytest.fixture(autouse=True, scope="module")
def wrapper_is_built() -> None:
    assert WRAPPER.is_file(), (
        "the OpenPGP wrapper is missing: run scripts/setup or scripts/build-js"
    )


# --- The stanza, made by the page's code in Node --------------------------------------


def make_headers(cases: list[dict[str, object]], tmp_path: Path) -> list[dict[str, object]]:
    """Run age_header.js with the built wrapper on each case; its JSON answers."""
    spec = tmp_path / "headers.json"
    spec.write_text(json.dumps({"cases": cases}))
    result = run([NODE, HEADER_HELPER, spec], check=True, capture_output=True, cwd=ROOT)
    answers: list[dict[str, object]] = json.loads(result.stdout)
    return answers


def header_of(answer: dict[str, object]) -> tuple[Header, bytes]:
    assert "error" not in answer, answer
    header = read_header(io.BytesIO(base64.b64decode(str(answer["header"]))))
    return header, bytes.fromhex(str(answer["file_key"]))


def openpgp_case(reviewer: GpgReviewer, armored: bytes | None = None) -> dict[str, object]:
    """An age recipient and the reviewer's key, as the page's #recipients block has them."""
    key = reviewer.public_key if armored is None else armored
    return {
        "recipients": [AGE_RECIPIENT, f"openpgp:{reviewer.fingerprint}"],
        "openpgp_keys": {reviewer.fingerprint: key.decode()},
    }


@pytest.mark.parametrize("kind", ["cv25519", "rsa3072"])
def test_the_page_stanza_is_what_the_relay_reads_and_gpg_opens(kind: str, tmp_path: Path) -> None:
    with gpg_reviewer_home("olga", kind) as reviewer:
        [answer] = make_headers([openpgp_case(reviewer)], tmp_path)
        header, file_key = header_of(answer)
        assert answer["loads"] == 1
        assert verify_header_mac(header, file_key)
        assert [stanza.type for stanza in header.stanzas] == ["X25519", "tiprelay-openpgp"]
        stanza = header.stanzas[1]
        assert stanza.args == (reviewer.fingerprint,)

        # The relay's own reading: one v3 PKESK to the encryption subkey, one SEIPD.
        assert [packet.tag for packet in read_packets(stanza.body)] == [TAG_PKESK, TAG_SEIPD]
        recipient = read_session_key_recipient(stanza.body)
        key = inspect_public_key(reviewer.public_key, "olga.asc")
        assert recipient.key_id in key.encryption_key_ids

        # gpg: the 16-byte file key, uncompressed, integrity-protected, dated the epoch.
        status = tmp_path / "status"
        opened = reviewer.gpg("--status-file", str(status), "--decrypt", input_bytes=stanza.body)
        assert opened == file_key
        lines = status.read_text().splitlines()
        assert "[GNUPG:] GOODMDC" in lines
        assert "[GNUPG:] PLAINTEXT 62 0 " in lines  # binary literal data, time 0
        assert not any(line.startswith("[GNUPG:] COMPRESSION") for line in lines)

        # And the reviewer's tools (what tiprelay decrypt --gpg uses).
        assert GpgIdentity(reviewer.home).unwrap(stanza) == file_key


def test_a_key_block_that_is_not_the_named_key_is_refused(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    with gpg_reviewer_home("mallory") as other:
        gpg_reviewer.gpg("--import", input_bytes=other.public_key)
        both = gpg_reviewer.gpg("--export", "--armor", gpg_reviewer.fingerprint, other.fingerprint)
        cases = [
            # The server (or whoever controls it) names one key and hands over another.
            openpgp_case(gpg_reviewer, other.public_key),
            # Two keys in one block.
            openpgp_case(gpg_reviewer, both),
            # Secret material where a public key belongs.
            openpgp_case(gpg_reviewer, gpg_reviewer.secret_key()),
            # No key at all for an OpenPGP recipient.
            {"recipients": [f"openpgp:{gpg_reviewer.fingerprint}"], "openpgp_keys": {}},
            # Not a fingerprint.
            {"recipients": ["openpgp:1234"], "openpgp_keys": {"1234": "x"}},
        ]
        answers = make_headers(cases, tmp_path)
    errors = [str(answer.get("error", "")) for answer in answers]
    assert f"holds key {other.fingerprint}" in errors[0]
    assert "holds 2 keys" in errors[1]
    assert "secret key material" in errors[2]
    assert "no OpenPGP key" in errors[3]
    assert "not an OpenPGP fingerprint" in errors[4]
    assert all("header" not in answer for answer in answers)


def test_without_openpgp_recipients_the_wrapper_is_never_loaded(tmp_path: Path) -> None:
    [answer] = make_headers([{"recipients": [AGE_RECIPIENT], "openpgp_keys": {}}], tmp_path)
    header, _ = header_of(answer)
    assert answer["loads"] == 0
    assert [stanza.type for stanza in header.stanzas] == ["X25519"]


# --- The whole path in Chromium ------------------------------------------------------


@contextlib.contextmanager
def relay_with_openpgp_reviewer(base_dir: Path, reviewer: GpgReviewer) -> Iterator[RelayServer]:
    """A relay with one age reviewer (support_server's) and one OpenPGP reviewer."""
    relay = new_relay(base_dir, {"default_language": "en"})
    add_openpgp_reviewer(relay.keys_dir, "olga", reviewer)
    try:
        relay.start()
        yield relay
    finally:
        relay.stop()


def make_attachments(folder: Path) -> list[Path]:
    rng = random.Random(10)
    files = {
        "Протокол совещания.txt": "Совещание в пятницу.\n".encode(),
        "scan.bin": rng.randbytes(3 * MiB + 17),
    }
    return write_files(folder, files)


def seal_in_page(page: Page, relay: RelayServer, message: str, files: list[Path]) -> list[str]:
    """Open the form, send ``message`` and ``files``; the URLs the page asked for."""
    asked: list[str] = []

    def note(request: Request) -> None:
        asked.append(request.url)

    page.on("request", note)
    page.goto(f"{relay.url}/?lang=en")
    page.wait_for_selector("#browser-sealing:not([hidden])")
    page.fill("#message", message)
    page.set_input_files("#attachment", [str(path) for path in files])
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("html[data-sealing-result=stored]", timeout=SEAL_TIMEOUT_MS)
    return asked


def decrypt_with_gpg(reviewer: GpgReviewer, blob: Path, out: Path) -> bytes:
    """``tiprelay decrypt --gpg`` in the reviewer's gpg home; the plaintext."""
    run(
        [TIPRELAY, "decrypt", "--gpg", "-o", out, blob],
        check=True,
        capture_output=True,
        env=reviewer.environment(),
    )
    return out.read_bytes()


def only_blob(relay: RelayServer) -> Path:
    blobs = relay.blob_paths()
    assert len(blobs) == 1, blobs
    return blobs[0]


def seal_and_open_by_both_reviewers(
    browser: Browser, reviewer: GpgReviewer, tmp_path: Path, *, refuse_x25519: bool = False
) -> None:
    files = make_attachments(tmp_path / "to-send")
    message = "Сообщение для двух рецензентов: age и OpenPGP."
    with relay_with_openpgp_reviewer(tmp_path / "relay", reviewer) as relay:
        context = browser.new_context()
        if refuse_x25519:
            context.add_init_script(REFUSE_WEBCRYPTO_X25519)
        page = context.new_page()
        asked = seal_in_page(page, relay, message, files)
        shown = page.text_content("#recipient-fingerprint")
        if refuse_x25519:
            # Both typage (age) and OpenPGP.js (cv25519) fell back to pure JS.
            assert page.evaluate("window.__x25519Refused") >= 2
            # V8 without a JIT runs no WebAssembly: the JIT was off.
            assert page.evaluate("typeof WebAssembly") == "undefined"
        context.close()
        assert shown == recipient_set_fingerprint(
            [relay.recipient, f"openpgp:{reviewer.fingerprint}"]
        )
        assert [urlsplit(url).path for url in asked].count(WRAPPER_URL_PATH) == 1
        both_reviewers_read(relay, reviewer, message, files, tmp_path)


def both_reviewers_read(
    relay: RelayServer, reviewer: GpgReviewer, message: str, files: list[Path], tmp_path: Path
) -> None:
    """The age reviewer (stock ``age``) and the OpenPGP one (``tiprelay decrypt --gpg``)
    read the same bytes: what was sent."""
    blob = only_blob(relay)
    with blob.open("rb") as sealed:
        stanzas = read_header(sealed).stanzas
    assert sorted(stanza.type for stanza in stanzas) == ["X25519", "tiprelay-openpgp"]
    by_age = relay.decrypt_with_stock_age(blob)
    by_gpg = decrypt_with_gpg(reviewer, blob, tmp_path / "by-gpg.tar")
    assert by_gpg == by_age
    archive = tmp_path / "opened.tar"
    archive.write_bytes(by_age)
    opened = tmp_path / "opened"
    extract_plaintext_archive(archive, opened)
    assert (opened / "message.txt").read_text() == message
    for path in files:
        assert (opened / "files" / path.name).read_bytes() == path.read_bytes()
    assert json.loads((opened / "submission.json").read_text())["sealed_by"] == "browser"


@pytest.mark.slow
def test_chromium_seals_for_an_age_and_an_openpgp_reviewer_and_each_opens_it(
    chromium_browser: Browser, gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    seal_and_open_by_both_reviewers(chromium_browser, gpg_reviewer, tmp_path)


@pytest.mark.slow
def test_the_same_with_the_jit_off_and_no_webcrypto_x25519(
    playwright_driver: Playwright, gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    # As in Tor Browser 14 at "Safer": Firefox ESR 128 has no WebCrypto X25519.
    browser = launch_chromium(playwright_driver, JITLESS_ARGS)
    try:
        seal_and_open_by_both_reviewers(browser, gpg_reviewer, tmp_path, refuse_x25519=True)
    finally:
        browser.close()


@pytest.mark.slow
def test_firefox_at_tor_browsers_safer_level_seals_for_both_reviewers(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    files = make_attachments(tmp_path / "to-send")
    message = "Firefox, Safer: age и OpenPGP."
    with relay_with_openpgp_reviewer(tmp_path / "relay", gpg_reviewer) as relay:
        visit = run_firefox_source(
            source_spec(f"{relay.url}/?lang=ru", "safer", tmp_path / "profile", message, files)
        )
        assert visit.mode == "browser"
        assert visit.page_errors == []
        assert visit.web_assembly == "undefined"  # no JIT, no WebAssembly
        asked = [urlsplit(request["url"]).path for request in visit.requests]
        assert asked.count(WRAPPER_URL_PATH) == 1
        both_reviewers_read(relay, gpg_reviewer, message, files, tmp_path)


@pytest.mark.slow
def test_the_usual_page_never_asks_for_the_openpgp_wrapper(
    chromium_browser: Browser, tmp_path: Path
) -> None:
    attachment = tmp_path / "note.txt"
    attachment.write_bytes(b"age only\n")
    with running_relay(tmp_path / "relay", {"default_language": "en"}) as relay:
        context = chromium_browser.new_context()
        page = context.new_page()
        asked = seal_in_page(page, relay, "age reviewers only", [attachment])
        block = json.loads(page.text_content("#recipients") or "{}")
        context.close()
        assert len(relay.blob_paths()) == 1
    assert block.get("openpgp_keys", {}) == {}
    assert any(urlsplit(url).path == "/static/dist/app.js" for url in asked)
    assert not any("openpgp" in url for url in asked), asked
