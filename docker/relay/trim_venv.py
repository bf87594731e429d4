"""Trim the image's venv of what the relay never loads (run in the Dockerfile's build stage).

Babel ships locale data for some 1,000 locales (over 30 MB); the relay's pages
only ever use its own languages (relay.config.LANGUAGES), so only those, their
regional variants and the root locale they inherit from are kept. The list
comes from the installed relay itself, so a language added there is kept here
without anyone having to remember this file.
"""

from __future__ import annotations

import pathlib

import babel
from babel.core import Locale

from relay.config import LANGUAGES


def trim_babel_locale_data() -> int:
    """Delete babel's locale data for languages the relay does not serve; return how many."""
    locale_data = pathlib.Path(babel.__file__).parent / "locale-data"
    kept = {"root", *LANGUAGES}
    removed = 0
    for data_file in locale_data.glob("*.dat"):
        if data_file.stem.split("_")[0] not in kept:
            data_file.unlink()
            removed += 1
    # Fail the build, not the relay, if the trim went too far.
    for language in LANGUAGES:
        Locale.parse(language).plural_form(1)
    return removed


if __name__ == "__main__":
    print(f"trim_venv: removed babel locale data for {trim_babel_locale_data()} locales")
