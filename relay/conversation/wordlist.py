"""The 7776-word list codenames are made of (EFF Large Wordlist, CC BY 3.0 US).

See ``WORDLIST-NOTICE.md`` beside this file for its source and licence. A word's
*index* is its line number minus one; the list is in ``abacus``...``zoom`` order.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

WORDLIST_PATH = Path(__file__).with_name("wordlist_en_eff.txt")
WORDLIST_SHA256 = "addd35536511597a02fa0a9ff1e5284677b8883b83e986e43f15a3db996b903e"
WORDLIST_SIZE = 7776


@cache
def words() -> tuple[str, ...]:
    """The list, in index order (lower-case a-z, four words with one hyphen)."""
    entries = []
    for line in WORDLIST_PATH.read_text(encoding="ascii").splitlines():
        _dice, _tab, word = line.partition("\t")
        entries.append(word)
    if len(entries) != WORDLIST_SIZE or len(set(entries)) != WORDLIST_SIZE:
        raise RuntimeError(f"{WORDLIST_PATH} is damaged: it must hold {WORDLIST_SIZE} words")
    return tuple(entries)


@cache
def word_index() -> dict[str, int]:
    """Each word's index."""
    return {word: index for index, word in enumerate(words())}
