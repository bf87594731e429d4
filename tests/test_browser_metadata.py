"""In Chromium: the page names what each attachment gives away, and strips pictures losslessly.

The fixtures (tests/support_metadata.py) carry GPS, a camera's make, model and
serial, an author, a last editor and a company. The page must name them before
anything is sent; with removal on (the default) the decrypted pictures carry
none of it while their pixels (and JPEG scan data) are identical; with removal
off every file arrives untouched; hostile files are reported as not checked,
in bounded time.
"""

from __future__ import annotations

import html
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright

from relay.server.browser_page import MESSAGES
from relay.server.i18n import translations
from tests import support_metadata as fixtures
from tests.support_browser import (
    JITLESS_ARGS,
    chromium_browser,
    extract_plaintext_archive,
    launch_chromium,
    playwright_driver,
)
from tests.support_metadata import exiftool_tags
from tests.support_server import RelayServer, running_relay

__all__ = ["chromium_browser", "playwright_driver"]  # fixtures, imported for pytest

pytestmark = pytest.mark.slow
SEAL_TIMEOUT_MS = 120_000
REPORT_TIMEOUT_MS = 30_000


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    with running_relay(tmp_path / "relay", {"default_language": "en"}) as server:
        yield server


def page_text(language: str, key: str) -> str:
    return translations(language).gettext(MESSAGES[key])


def choose_files(page: Page, relay: RelayServer, files: list[Path], language: str) -> dict:
    page.goto(f"{relay.url}/?lang={language}")
    page.wait_for_selector("#browser-sealing:not([hidden])")
    page.set_input_files("#attachment", [str(path) for path in files])
    page.wait_for_selector("#metadata-report[data-state=done]", timeout=REPORT_TIMEOUT_MS)
    items = page.eval_on_selector_all(
        "#metadata-files > li",
        "items => items.map(item => [item.querySelector('strong').textContent,"
        " {kinds: item.dataset.kinds, text: item.textContent}])",
    )
    return dict(items)


def send_and_open(page: Page, relay: RelayServer, out: Path) -> Path:
    page.fill("#message", "see the files")
    page.click("#submission-form button[type=submit]")
    page.wait_for_selector("html[data-sealing-result=stored]", timeout=SEAL_TIMEOUT_MS)
    blobs = relay.blob_paths()
    assert len(blobs) == 1, blobs
    archive = out.with_suffix(".tar")
    archive.write_bytes(relay.decrypt_with_stock_age(blobs[0]))
    extract_plaintext_archive(archive, out)
    return out / "files"


def test_page_names_what_each_file_gives_away_in_the_sources_language(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    paths = fixtures.write_fixtures(tmp_path / "to-send")
    paths["scan.tif"] = tmp_path / "to-send" / "scan.tif"
    paths["scan.tif"].write_bytes(fixtures.tiff_with_camera())
    # Plain text has no hidden fields: a neutral line, not "may carry hidden details".
    # Markup (HTML, SVG, RTF) can hold an author's name, and binary is unknown.
    extras = {"notes.txt": "Встреча в 9:00.\r\n\tАдрес ниже.\n".encode(),
              "page.html": b"<html><meta name=author content=x></html>",
              "blob.bin": bytes(range(256))}  # fmt: skip
    for name, data in extras.items():
        paths[name] = tmp_path / "to-send" / name
        paths[name].write_bytes(data)
    page = chromium_browser.new_context().new_page()
    found = choose_files(page, relay, list(paths.values()), "ru")
    assert found["notes.txt"]["text"].endswith(page_text("ru", "metadata_plain_text"))
    for name in ("page.html", "blob.bin"):
        assert found[name]["text"].endswith(page_text("ru", "metadata_unknown")), name

    assert set(found["photo.jpg"]["kinds"].split()) >= {"place", "device", "times"}
    assert fixtures.CAMERA_SERIAL in found["photo.jpg"]["text"]
    assert fixtures.CAMERA_MODEL in found["photo.jpg"]["text"]
    assert page_text("ru", "metadata_place") in found["photo.jpg"]["text"]
    assert page_text("ru", "metadata_removable") in found["photo.jpg"]["text"]
    assert set(found["rotated.jpg"]["kinds"].split()) >= {"device"}
    assert set(found["shot.png"]["kinds"].split()) >= {"people", "notes"}
    assert fixtures.AUTHOR in found["shot.png"]["text"]
    assert set(found["report.docx"]["kinds"].split()) >= {"people"}
    for secret in (fixtures.AUTHOR, fixtures.EDITOR, fixtures.COMPANY):
        assert secret in found["report.docx"]["text"]
    assert set(found["paper.pdf"]["kinds"].split()) >= {"people", "software", "times"}
    assert fixtures.AUTHOR in found["paper.pdf"]["text"]
    assert page_text("ru", "metadata_kept") in found["paper.pdf"]["text"]
    # A picture the page cannot rewrite: named, and the source told what to do instead.
    assert set(found["scan.tif"]["kinds"].split()) >= {"device"}
    assert page_text("ru", "metadata_kept_picture") in found["scan.tif"]["text"]
    assert page.is_visible("#metadata-documents")
    assert page.is_checked("#metadata-strip")  # removal is on by default
    page.context.close()


def test_with_removal_on_pictures_arrive_without_metadata_and_with_identical_pixels(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    paths = fixtures.write_fixtures(tmp_path / "to-send")
    page = chromium_browser.new_context().new_page()
    choose_files(page, relay, list(paths.values()), "en")
    files = send_and_open(page, relay, tmp_path / "opened")
    page.context.close()

    for name in ("photo.jpg", "rotated.jpg"):
        original, received = paths[name].read_bytes(), (files / name).read_bytes()
        assert fixtures.jpeg_picture_data(received) == fixtures.jpeg_picture_data(original)
        assert fixtures.pixels(received) == fixtures.pixels(original)
        tags = exiftool_tags(files / name)
        leftovers = [tag for tag in tags if any(word in tag for word in
                                                ("GPS", "Make", "Model", "Serial", "Date"))]
        assert leftovers == [], (name, leftovers)
        assert fixtures.CAMERA_SERIAL.encode() not in received
        assert fixtures.CAMERA_MODEL.encode() not in received
    # The orientation stays, so that a sideways photo still displays upright.
    assert exiftool_tags(files / "rotated.jpg")["IFD0:Orientation"] == "Rotate 90 CW"
    png = (files / "shot.png").read_bytes()
    assert not {"tEXt", "iTXt", "zTXt", "eXIf", "tIME"} & set(fixtures.png_chunk_types(png))
    assert fixtures.pixels(png) == fixtures.pixels(paths["shot.png"].read_bytes())
    assert fixtures.AUTHOR.encode() not in png
    # Documents are left to the reviewers (mat2): they arrive byte for byte.
    for name in ("report.docx", "paper.pdf"):
        assert (files / name).read_bytes() == paths[name].read_bytes()


def test_with_removal_off_every_file_arrives_untouched(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    paths = fixtures.write_fixtures(tmp_path / "to-send")
    page = chromium_browser.new_context().new_page()
    choose_files(page, relay, list(paths.values()), "en")
    page.uncheck("#metadata-strip")
    files = send_and_open(page, relay, tmp_path / "opened")
    page.context.close()
    for name, path in paths.items():
        assert (files / name).read_bytes() == path.read_bytes(), name


def test_hostile_files_are_reported_as_not_checked_in_bounded_time(
    chromium_browser: Browser, relay: RelayServer, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    made = {
        "cut.jpg": fixtures.truncated_jpeg(),
        "huge-exif.jpg": fixtures.jpeg_with_huge_declared_exif(),
        "bomb.docx": fixtures.docx_with_bomb_in_its_properties(64 << 20),
        "cut.png": fixtures.png_with_text_chunks()[:60],
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    page = chromium_browser.new_context().new_page()
    started = time.monotonic()
    found = choose_files(page, relay, [folder / name for name in made], "en")
    elapsed = time.monotonic() - started
    files = send_and_open(page, relay, tmp_path / "opened")
    page.context.close()

    assert elapsed < 20
    for name in ("cut.jpg", "bomb.docx", "cut.png", "huge-exif.jpg"):
        assert found[name]["kinds"] == "unreadable", (name, found[name])
        assert page_text("en", "metadata_unreadable") in found[name]["text"]
    # The lying EXIF cannot be read, but its segment is sound: it is dropped all the same.
    assert page_text("en", "metadata_removable") in found["huge-exif.jpg"]["text"]
    received = (files / "huge-exif.jpg").read_bytes()
    assert b"Exif\0\0" not in received
    assert fixtures.jpeg_picture_data(received) == fixtures.jpeg_picture_data(made["huge-exif.jpg"])
    # What could not be parsed is sent as it is, never half-rewritten.
    for name in ("cut.jpg", "bomb.docx", "cut.png"):
        assert (files / name).read_bytes() == made[name], name


def test_the_page_reads_and_strips_with_the_jit_off(
    playwright_driver: Playwright, relay: RelayServer, tmp_path: Path
) -> None:
    """Tor Browser's "Safer" level runs scripts without a JIT (and without WebAssembly)."""
    paths = fixtures.write_fixtures(tmp_path / "to-send")
    browser = launch_chromium(playwright_driver, JITLESS_ARGS)
    try:
        page = browser.new_page()
        found = choose_files(page, relay, [paths["photo.jpg"], paths["report.docx"]], "uk")
        files = send_and_open(page, relay, tmp_path / "opened")
    finally:
        browser.close()
    assert set(found["photo.jpg"]["kinds"].split()) >= {"place", "device"}
    assert page_text("uk", "metadata_device") in found["photo.jpg"]["text"]
    assert fixtures.COMPANY in found["report.docx"]["text"]
    assert fixtures.CAMERA_SERIAL.encode() not in (files / "photo.jpg").read_bytes()


NO_JS_ADVICE = (
    "To remove a photo's hidden details (place, camera, time), take a screenshot of the photo "
    "and send the screenshot. A document stores the names of its author and organisation: if "
    "they could be yours, send photos of its pages or copy its text into your message. With "
    "JavaScript on, this page shows what each file gives away before you send it."
)


@pytest.mark.parametrize("language", ["ru", "uk", "en"])
def test_the_page_without_javascript_gives_the_same_advice_in_words(
    relay: RelayServer, language: str
) -> None:
    with urllib.request.urlopen(f"{relay.url}/?lang={language}", timeout=30) as response:
        page = response.read().decode("utf-8")
    advice = html.escape(translations(language).gettext(NO_JS_ADVICE), quote=False)
    assert language == "en" or advice != html.escape(NO_JS_ADVICE, quote=False)
    # In the advice shown to everyone, not in the part only the script reveals.
    assert 0 <= page.find(advice) < page.find('id="browser-sealing"'), language
