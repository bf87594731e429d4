"""The languages of the source pages, and their gettext catalogs.

The catalogs are the committed ``.po`` sources in ``relay/web/locale``; they are
compiled in memory when first used, so that nothing built is committed or
needs a build step. The language comes from ``?lang=xx`` (or the form's
``lang`` field), else from the configured default, never from the browser's
Accept-Language (which differs between a source's Tor Browser and anyone
else's, and would make pages differ by something the source did not choose).

To update the catalogs after changing a text::

    .venv/bin/pybabel extract -F relay/web/babel.cfg -k N_ -o /tmp/messages.pot .
    .venv/bin/pybabel update -i /tmp/messages.pot -d relay/web/locale --no-fuzzy-matching
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).resolve().parent.parent / "web" / "locale"
DOMAIN = "messages"

LANGUAGES: dict[str, str] = {"ru": "Русский", "uk": "Українська", "en": "English"}
"""Language code -> the language's own name, in the switcher's order."""

SOURCE_LANGUAGE = "en"
"""The language the message ids are written in (it needs no catalog entries)."""


def N_(message: str) -> str:
    """Marks a text for extraction; it is translated later, when rendered."""
    return message


def is_supported(code: object) -> bool:
    """Whether ``code`` names one of the page languages."""
    return isinstance(code, str) and code in LANGUAGES


def choose_language(requested: str | None, default: str) -> str:
    """The requested language if supported, else the configured default."""
    if requested is not None and is_supported(requested):
        return requested
    return default if is_supported(default) else "ru"


def catalog_path(code: str) -> Path:
    """Where the ``.po`` source of a language lives."""
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(code: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (the identity for the source language)."""
    if not is_supported(code):
        raise ValueError(f"unsupported language {code!r}")
    path = catalog_path(code)
    if code == SOURCE_LANGUAGE and not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def format_size(size: int, code: str) -> str:
    """A byte count for people, in the language's units and number format."""
    gettext_ = translations(code).gettext
    units = (
        (1024**3, N_("%(number)s GB")),
        (1024**2, N_("%(number)s MB")),
        (1024, N_("%(number)s KB")),
    )
    for unit, label in units:
        if size >= unit:
            number = format_decimal(round(size / unit, 1), format="#,##0.#", locale=code)
            return gettext_(label) % {"number": number}
    return gettext_(N_("%(number)s bytes")) % {"number": format_decimal(size, locale=code)}
