"""In Firefox ESR, the sources' own browser: the page names what each attachment gives away.

At Tor Browser's Standard and Safer levels (tests/support_firefox.py) a source
chooses files that betray them (tests/support_metadata.py: a JPEG with GPS and a
camera serial, a PNG with text chunks, a DOCX and a PDF naming an author). The
page's metadata panel must name the place, the device and the people before
anything is sent; with removal on (the default) the decrypted pictures carry
none of it, as read by exiftool, while their pixels are identical, and the
documents arrive byte for byte (the reviewers clean those). One Firefox start
per level does both. The Chromium side, removal off and hostile files are in
tests/test_browser_metadata.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.server.browser_page import MESSAGES
from relay.server.i18n import translations
from tests import support_metadata as fixtures
from tests.support_browser import extract_plaintext_archive
from tests.support_firefox import run_firefox_source, source_spec
from tests.support_server import RelayServer, running_relay

pytestmark = pytest.mark.slow  # a Firefox start and a submission per level: 5 to 30 s each

LANGUAGE_AT_LEVEL = {"standard": "ru", "safer": "uk"}
WORDS_OF_IDENTIFYING_TAGS = {
    "photo.jpg": ("GPS", "Make", "Model", "Serial", "Date"),
    "shot.png": ("Author", "Comment"),
}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    with running_relay(tmp_path_factory.mktemp("relay")) as server:
        yield server


def page_text(language: str, key: str) -> str:
    return translations(language).gettext(MESSAGES[key])


def identifying_tags(path: Path, name: str) -> list[str]:
    words = WORDS_OF_IDENTIFYING_TAGS[name]
    return [tag for tag in fixtures.exiftool_tags(path) if any(word in tag for word in words)]


def opened_files(relay: RelayServer, blob: Path, out: Path) -> Path:
    """The blob's plaintext, through stock ``age -d -i`` and ``tar -x``."""
    archive = out.with_suffix(".tar")
    archive.write_bytes(relay.decrypt_with_stock_age(blob))
    extract_plaintext_archive(archive, out)
    return out


@pytest.mark.parametrize("level", ["standard", "safer"])
def test_firefox_names_what_files_give_away_and_sends_pictures_without_it(
    level: str, relay: RelayServer, tmp_path: Path
) -> None:
    language = LANGUAGE_AT_LEVEL[level]
    paths = fixtures.write_fixtures(
        tmp_path / "to-send", ("photo.jpg", "shot.png", "report.docx", "paper.pdf")
    )
    message = f"Firefox, {level}: see the files."
    blobs_before = set(relay.blob_paths())
    visit = run_firefox_source(
        source_spec(
            f"{relay.url}/?lang={language}",
            level,
            tmp_path / "profile",
            message,
            list(paths.values()),
            read_metadata=True,
        )
    )
    assert visit.mode == "browser" and visit.page_errors == []
    # Safer turns the JIT and WebAssembly off: the panel works without them.
    assert visit.web_assembly == ("undefined" if level == "safer" else "object")

    # 1. Before sending, the page names what each file gives away, in the source's language.
    assert visit.metadata is not None
    found = visit.metadata["files"]
    assert set(found) == set(paths)
    photo, png = found["photo.jpg"], found["shot.png"]
    assert set(photo["kinds"].split()) >= {"place", "device", "times"}
    assert fixtures.CAMERA_SERIAL in photo["text"] and fixtures.CAMERA_MODEL in photo["text"]
    for key in ("metadata_place", "metadata_device", "metadata_removable"):
        assert page_text(language, key) in photo["text"], key
    assert set(png["kinds"].split()) >= {"people", "notes"}
    assert fixtures.AUTHOR in png["text"]
    assert page_text(language, "metadata_removable") in png["text"]
    docx, pdf = found["report.docx"], found["paper.pdf"]
    assert set(docx["kinds"].split()) >= {"people"}
    for secret in (fixtures.AUTHOR, fixtures.EDITOR, fixtures.COMPANY):
        assert secret in docx["text"]
    assert set(pdf["kinds"].split()) >= {"people", "software", "times"}
    assert fixtures.AUTHOR in pdf["text"]
    for document in (docx, pdf):
        assert page_text(language, "metadata_people") in document["text"]
        assert page_text(language, "metadata_kept") in document["text"]
    assert visit.metadata["stripChecked"] is True  # removal is on by default
    assert visit.metadata["documentsNoticeShown"] is True

    # 2. Sent with removal on: the pictures lost what identifies, not a pixel.
    new_blobs = set(relay.blob_paths()) - blobs_before
    assert len(new_blobs) == 1, new_blobs
    out = opened_files(relay, new_blobs.pop(), tmp_path / "opened")
    assert (out / "message.txt").read_text() == message
    files = out / "files"
    for name in ("photo.jpg", "shot.png"):
        assert identifying_tags(paths[name], name), f"exiftool finds nothing in {name} anyway"
        assert identifying_tags(files / name, name) == [], name
        original, received = paths[name].read_bytes(), (files / name).read_bytes()
        assert received != original
        assert fixtures.pixels(received) == fixtures.pixels(original), name
        for secret in fixtures.SECRETS:
            assert secret.encode() not in received, (name, secret)
    photo_bytes = (files / "photo.jpg").read_bytes()
    assert fixtures.jpeg_picture_data(photo_bytes) == fixtures.jpeg_picture_data(
        paths["photo.jpg"].read_bytes()
    )
    assert not {"tEXt", "iTXt", "zTXt", "eXIf", "tIME"} & set(
        fixtures.png_chunk_types((files / "shot.png").read_bytes())
    )
    # Documents are left to the reviewers (mat2): they arrive byte for byte.
    for name in ("report.docx", "paper.pdf"):
        assert (files / name).read_bytes() == paths[name].read_bytes(), name
