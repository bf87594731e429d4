"""Attachment names made safe for any reviewer's file system.

The same rules run twice: when a submission is built (so the archive holds
tidy names) and again when one is extracted (because the archive may come
from anyone). The rules, in order:

- Unicode NFC, so that a name typed on macOS (NFD) and on Windows compare equal;
- only the last path component survives (``../x`` -> ``x``, ``a\\b`` -> ``b``);
- control, format (bidi overrides such as U+202E) and separator characters and
  unencodable surrogates are dropped; other spaces become a plain space;
- the characters Windows forbids (``<>:"|?*``) become ``_``;
- leading dots, dashes and spaces (hidden files, option injection) and trailing
  dots and spaces (Windows drops them) are stripped;
- Windows device names (``CON``, ``com1.txt``...) get a ``_`` prefix;
- the result is cut to ``MAX_NAME_BYTES`` of UTF-8, keeping a short extension.

Letters of every script (Cyrillic first of all) and inner spaces are kept.
An empty result becomes ``attachment-N``. Names are unique ignoring case,
since macOS and Windows file systems ignore it: ``a.txt``, ``A (2).txt``.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200
"""Leaves room under the common 255-byte file-name limit for tools that add suffixes."""

_MAX_EXTENSION_CHARS = 16
_WINDOWS_FORBIDDEN = str.maketrans(dict.fromkeys('<>:"|?*', "_"))
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WINDOWS_DEVICE = re.compile(
    r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³]) *(\..*)?", re.IGNORECASE
)


def sanitize_name(raw: str) -> str:
    """One file name safe on Linux, macOS and Windows; may be empty."""
    name = raw
    # Each pass only removes or replaces characters, but removing one can
    # expose another rule (an inner ``.`` becomes leading), so run to a fixpoint.
    for _ in range(8):
        cleaned = _sanitize_once(name)
        if cleaned == name:
            break
        name = cleaned
    return name


def _sanitize_once(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(_clean_char(char) for char in name)
    name = name.translate(_WINDOWS_FORBIDDEN)
    name = name.lstrip(". -").rstrip(". ")
    if _WINDOWS_DEVICE.fullmatch(name):
        name = "_" + name
    return _fit(name, MAX_NAME_BYTES)


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in _DROPPED_CATEGORIES:
        return ""
    if category == "Zs":
        return " "
    return char


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > _MAX_EXTENSION_CHARS + 1:
        return name, ""
    return name[:dot], name[dot:]


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", errors="ignore")


def _fit(name: str, max_bytes: int) -> str:
    """Cut ``name`` to ``max_bytes`` of UTF-8, shortening the stem before the extension."""
    if _utf8_length(name) <= max_bytes:
        return name
    stem, extension = _split_extension(name)
    room = max_bytes - _utf8_length(extension)
    if room < 1:
        return _cut(name, max_bytes)
    return _cut(stem, room) + extension


class NameAllocator:
    """Gives each attachment a sanitised name, unique ignoring case."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._last_copy: dict[str, int] = {}
        """Per name (ignoring case), the highest copy number handed out: the search for
        a free ``name (N)`` resumes there, or a hostile archive of n names that all
        clean to the same one would cost n² steps (minutes for the 10,000 allowed)."""
        self._count = 0

    def allocate(self, raw: str) -> str:
        """The name to store the next attachment under (``attachment-N`` if nothing is left)."""
        self._count += 1
        name = sanitize_name(raw) or f"attachment-{self._count}"
        stem, extension = _split_extension(name)
        name_key = _collision_key(name)
        candidate, copy = name, self._last_copy.get(name_key, 1)
        if copy > 1:
            candidate = _numbered(stem, copy, extension)
        while _collision_key(candidate) in self._taken:
            copy += 1
            candidate = _numbered(stem, copy, extension)
        self._last_copy[name_key] = copy
        self._taken.add(_collision_key(candidate))
        return candidate


def _numbered(stem: str, copy: int, extension: str) -> str:
    """``stem (copy).ext``, the stem cut so that the whole fits in MAX_NAME_BYTES."""
    suffix = f" ({copy})"
    room = MAX_NAME_BYTES - _utf8_length(suffix + extension)
    return _cut(stem, room).rstrip(". ") + suffix + extension


def _collision_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()
