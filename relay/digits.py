"""Strict parsing of whole numbers written with the ASCII digits 0-9 only.

``str.isdigit()`` and the regex ``\\d`` also accept other scripts' digits
("٣", "３") and, for ``isdigit``, superscripts ("²") that ``int()`` then
refuses with a ValueError. Untrusted text (query strings, headers, manifests,
config values) goes through here instead, so that anything else is plainly
"not a number" and never an unexpected exception.
"""

from __future__ import annotations

import re

ASCII_DIGITS = "[0-9]"
"""For regular expressions: one ASCII digit (``\\d`` matches every script's digits)."""

_ASCII_DECIMAL = re.compile(r"[0-9]+")


def parse_ascii_decimal(text: str | bytes, max_digits: int) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else None."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not 1 <= len(text) <= max_digits or not _ASCII_DECIMAL.fullmatch(text):
        return None
    return int(text)
