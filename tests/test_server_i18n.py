"""The source pages' catalogs: every text extracted from the code and templates is
translated into Russian and Ukrainian, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from relay.server import i18n

REPO = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.fixture(scope="module")
def extracted_ids(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The message ids, extracted with the command documented in relay/server/i18n.py."""
    template = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [str(Path(sys.executable).with_name("pybabel")), "extract",
         "-F", "relay/web/babel.cfg", "-k", "N_", "-o", str(template), "."],
        cwd=REPO, check=True, capture_output=True,
    )
    with template.open("rb") as pot:
        return {message.id for message in read_po(pot) if message.id}


@pytest.mark.parametrize("language", ["ru", "uk"])
def test_every_source_page_text_is_translated(extracted_ids: set[str], language: str) -> None:
    with i18n.catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    assert len(extracted_ids) > 50
    assert sorted(extracted_ids - set(translated)) == []
    for message_id in extracted_ids:
        assert sorted(PLACEHOLDER.findall(translated[message_id])) == sorted(
            PLACEHOLDER.findall(message_id)
        ), message_id


def test_sizes_are_written_in_the_language_of_the_page() -> None:
    assert i18n.format_size(2 * 1024**3, "ru") == "2 ГБ"
    assert i18n.format_size(1536 * 1024, "uk") == "1,5 МБ"
    assert i18n.format_size(1536 * 1024, "en") == "1.5 MB"
    assert i18n.format_size(10, "en") == "10 bytes"


def test_language_choice_ignores_unknown_codes() -> None:
    assert i18n.choose_language("uk", "ru") == "uk"
    assert i18n.choose_language("de", "en") == "en"
    assert i18n.choose_language(None, "ru") == "ru"


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
def test_each_catalog_names_each_text_once(language: str) -> None:
    """Branches that each add texts merge into one catalog: a text twice is a merge slip
    (gettext keeps one of the two translations, silently)."""
    catalog = (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").read_text()
    ids = re.findall(r'^msgid ((?:".*"\n)+)', catalog, flags=re.MULTILINE)
    repeated = sorted({text for text in ids if ids.count(text) > 1})
    assert not repeated, f"{language}: texts listed more than once: {repeated}"
