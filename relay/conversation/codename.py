"""Codenames: 7 words drawn by a CSPRNG, and typed input folded back to them.

The secret is the 7 word *indices* (``wordlist``), never the typed text. Folding
(docs/conversations.md "Folding", implemented identically in
relay/web/js/conversation/codename.js) runs these steps, in order:

1. Refuse input longer than ``MAX_INPUT_CHARS`` code points (bounded cost).
2. Unicode NFKC (full-width letters, NBSP and other odd spaces, ligatures), then
   lower case.
3. Drop invisible characters (``INVISIBLE``: zero-width spaces and joiners, soft
   hyphen, word joiner, BOM, bidi marks and controls).
4. Split into tokens at any run of ``SEPARATORS`` (white space of every kind,
   hyphens and dashes, ``_ . , ; : /``).
5. Read each token as a word *piece*: first as typed with look-alike Cyrillic
   letters (``LOOKALIKE``: Cyrillic letter -> the Latin letter it looks like,
   Latin a-z unchanged); if that is not a piece and the token has no Latin
   letter, as typed on a Russian or Ukrainian ЙЦУКЕН keyboard with the Latin word
   in mind (``LAYOUT``: Cyrillic letter -> the Latin letter on the same key).
   The pieces are the list's words and the halves of its four hyphenated words
   (``drop-down``, ``felt-tip``, ``t-shirt``, ``yo-yo``). The tests prove that no
   token has two readings that are different pieces, so the order never matters.
6. Walk the pieces: a piece that is a list word is that word; otherwise it and
   the next piece joined by ``-`` must be a (hyphenated) list word. No half of
   a hyphenated word is itself a word (tested), so this walk is unambiguous.
7. The first token that is no word gives ``CodenameError(kind="unknown_word",
   position=p)`` (p counts words from 1); no word at all gives ``kind="empty"``;
   anything but 8 or 7 words gives ``kind="word_count"``.
8. Eight words: the 8th must be the **check word** of the first 7
   (``check_index``), else ``kind="check_failed"`` (a word mistyped into
   another list word, or two words swapped). Seven words: a codename given
   before check words existed, accepted as it is (nothing to check it with).

A third and fourth reading in step 5, ``TRANSLIT`` and ``TRANSLIT_UK``, accept
the Latin letters written one for one in Cyrillic (``гранола`` for ``granola``;
q, w, x typed as they are; и is i for a Russian reader, y for a Ukrainian one).

These errors depend only on the public list and the typed words, never on a
relay's data: they are no oracle, and a page may say exactly which word is wrong.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field

from relay.conversation.wordlist import WORDLIST_SIZE, word_index, words
from relay.errors import TiprelayError

CODENAME_WORDS = 7
"""The secret words: their indices are all that derivation uses."""
WRITTEN_WORDS = CODENAME_WORDS + 1
"""What the source writes down: the 7 words, then their check word."""
CHECK_LABEL = b"tiprelay/codename-check/v1"
MAX_INPUT_CHARS = 1000
"""Far more than 7 words with generous spacing; NFKC can grow text 18-fold at most."""

INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\u3164\ufe00\ufe0f\ufeff\uffa0"
)
"""Characters dropped after NFKC: they show as nothing, or nearly nothing."""

SEPARATORS = frozenset(
    " \t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u1680\u2028\u2029"  # white space left after NFKC
    "-\u2010\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\u30fc"  # hyphens, dashes, minus
    "_.,;:/\u00b7\u2022\u3001\u3002"  # other marks people put between words
)
"""Characters between words; NFKC has already turned NBSP, U+2000-U+200A, U+202F,
U+205F and U+3000 into a plain space, U+FE63 and U+FF0D into ``-``, U+2011 into U+2010."""

LOOKALIKE = {
    "а": "a", "в": "b", "е": "e", "і": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
    "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l",
}  # fmt: skip
"""Cyrillic letters (lower case) whose upper- or lower-case glyph is a Latin
letter's in common fonts: the Russian ones, Ukrainian/Belarusian і, Serbian and
Macedonian ј ѕ, Bashkir һ, Komi ԁ, Kurdish ԛ ԝ, palochka ӏ. Not Greek, and not
letters that only resemble one in italics (и, п, г)."""

LAYOUT = {
    "й": "q", "ц": "w", "у": "e", "к": "r", "е": "t", "н": "y", "г": "u", "ш": "i",
    "щ": "o", "з": "p", "ф": "a", "ы": "s", "в": "d", "а": "f", "п": "g", "р": "h",
    "о": "j", "л": "k", "д": "l", "я": "z", "ч": "x", "с": "c", "м": "v", "и": "b",
    "т": "n", "ь": "m", "і": "s",
}  # fmt: skip
"""The Cyrillic letter on each Latin letter's key in the Russian ЙЦУКЕН layout
(and Ukrainian і, on the key where Russian has ы). Keys that carry punctuation in
the Latin layout (х ъ ж э б ю ё, Ukrainian ї є ґ) never occur in a list word."""

TRANSLIT = {
    "а": "a", "б": "b", "ц": "c", "д": "d", "е": "e", "э": "e", "є": "e", "ф": "f",
    "г": "g", "ґ": "g", "х": "h", "и": "i", "і": "i", "ї": "i", "й": "j", "к": "k",
    "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "в": "v", "ы": "y", "з": "z",
}  # fmt: skip
"""Each Latin letter written with the Cyrillic letter a Russian or Ukrainian
reader says for it, one for one (``гранола`` = ``granola``, ``ютилити`` is *not*
``utility``: letters, not sounds). q, w and x have no such letter and are
typed as Latin letters, so this reading allows Latin letters in the token."""

TRANSLIT_UK = {**TRANSLIT, "и": "y"}
"""The same for a Ukrainian reader, for whom и is y (і and ї are i): a fourth
reading, tried after ``TRANSLIT``."""

TRANSLIT_SHOWN = {
    "ru": {cyr: lat for cyr, lat in TRANSLIT.items() if cyr not in "іїєґ"},
    "uk": {cyr: lat for cyr, lat in TRANSLIT_UK.items() if cyr not in "ыэ"},
}
"""The letters each page language shows in its table (its own alphabet only)."""

_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz")


def translit_letters(language: str) -> list[tuple[str, str]]:
    """Each Latin letter with the Cyrillic letters a page in ``language`` shows for it."""
    table = TRANSLIT_SHOWN.get(language, TRANSLIT_SHOWN["ru"])
    return [
        (latin, " ".join(cyr for cyr, lat in table.items() if lat == latin) or latin)
        for latin in sorted(_LATIN)
    ]


class CodenameError(TiprelayError):
    """This is not a codename: it must be the 7 words you were given."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNKNOWN_WORD = "unknown_word"
    WORD_COUNT = "word_count"
    CHECK_FAILED = "check_failed"

    def __init__(self, kind: str, *, position: int | None = None, count: int | None = None):
        self.kind = kind
        self.position = position
        """For ``unknown_word``: which word (1 = first) is not on the list."""
        self.count = count
        """For ``word_count``: how many list words the input held."""
        super().__init__(_MESSAGES[kind].format(position=position, count=count))


_MESSAGES = {
    CodenameError.EMPTY: "Type the 8 words of your codename.",
    CodenameError.TOO_LONG: "This is far longer than a codename: type its 8 words only.",
    CodenameError.UNKNOWN_WORD: "Word {position} of the codename is not one of its words; "
    "check its spelling (Latin letters).",
    CodenameError.WORD_COUNT: "A codename has 8 words (7 if it is an old one); this has {count}.",
    CodenameError.CHECK_FAILED: "These are list words, but not a codename: check the order "
    "and spelling of the words.",
}


def encode_check_input(indices: tuple[int, ...]) -> bytes:
    """The check's hash input: the label, then each index as 2 bytes big-endian."""
    return CHECK_LABEL + b"".join(i.to_bytes(2, "big") for i in indices)


def check_index(indices: tuple[int, ...]) -> int:
    """The check word of 7 indices: SHA-256's first 4 bytes, big-endian, mod 7776.

    Computed from the words alone (no relay data): a typed codename is checked
    before anything is derived or sent, and the check tells nobody anything.
    """
    digest = hashlib.sha256(encode_check_input(indices)).digest()
    return int.from_bytes(digest[:4], "big") % WORDLIST_SIZE


@dataclass(frozen=True)
class Codename:
    """The 7 word indices that are a conversation's secret."""

    indices: tuple[int, ...]
    checked: bool = field(default=True, compare=False)
    """False for a 7-word codename typed without its check word (an old one)."""

    def __post_init__(self) -> None:
        if len(self.indices) != CODENAME_WORDS or not all(
            isinstance(i, int) and 0 <= i < WORDLIST_SIZE for i in self.indices
        ):
            raise ValueError(f"a codename is {CODENAME_WORDS} indices below {WORDLIST_SIZE}")

    @property
    def words(self) -> tuple[str, ...]:
        """The 7 secret words."""
        return tuple(words()[i] for i in self.indices)

    @property
    def check(self) -> int:
        """The index of the check word."""
        return check_index(self.indices)

    @property
    def written_words(self) -> tuple[str, ...]:
        """The 8 words as the source is shown them and writes them down."""
        return (*self.words, words()[self.check])

    def __str__(self) -> str:
        return " ".join(self.written_words)

    def __repr__(self) -> str:
        return "Codename(<secret>)"  # never in a log line or a traceback


def generate_codename() -> Codename:
    """A new codename: 7 independent uniform indices from the OS CSPRNG (~90 bits).

    It is written as 8 words: the check word adds no secret and costs no entropy."""
    return Codename(tuple(secrets.randbelow(WORDLIST_SIZE) for _ in range(CODENAME_WORDS)))


def _read(token: str, table: dict[str, str], latin_allowed: bool) -> str | None:
    out = []
    for char in token:
        if latin_allowed and char in _LATIN:
            out.append(char)
        elif char in table:
            out.append(table[char])
        else:
            return None
    return "".join(out)


def _pieces() -> frozenset[str]:
    halves = {half for word in words() if "-" in word for half in word.split("-")}
    return frozenset(word_index()) | halves


_PIECES = _pieces()


_READINGS = ((LOOKALIKE, True), (LAYOUT, False), (TRANSLIT, True), (TRANSLIT_UK, True))


def read_token(token: str) -> str | None:
    """A folded token as a word piece (step 5), or None if it reads as none."""
    # A layout reading of a token with Latin letters in it would make mixed tokens
    # ambiguous (Cyrillic т looks like t but sits on the n key); nobody types half
    # a word on each layout.
    for table, latin_allowed in _READINGS:
        reading = _read(token, table, latin_allowed)
        if reading is not None and reading in _PIECES:
            return reading
    return None


def split_tokens(text: str) -> list[str]:
    """Steps 1-4: the folded tokens of typed input."""
    if len(text) > MAX_INPUT_CHARS:
        raise CodenameError(CodenameError.TOO_LONG)
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    current: list[str] = []
    for char in text:
        if char in INVISIBLE:
            continue
        if char in SEPARATORS:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def fold_codename(text: str) -> Codename:
    """The codename the source meant by ``text``; CodenameError if it is none."""
    index = word_index()
    readings = [read_token(token) for token in split_tokens(text)]
    found: list[int] = []
    position = 0
    while position < len(readings):
        reading = readings[position]
        if reading is not None and reading in index:
            found.append(index[reading])
            position += 1
            continue
        following = readings[position + 1] if position + 1 < len(readings) else None
        joined = f"{reading}-{following}"
        if reading is not None and following is not None and joined in index:
            found.append(index[joined])
            position += 2
            continue
        raise CodenameError(CodenameError.UNKNOWN_WORD, position=len(found) + 1)
    if not found:
        raise CodenameError(CodenameError.EMPTY)
    if len(found) == CODENAME_WORDS:
        return Codename(tuple(found), checked=False)
    if len(found) != WRITTEN_WORDS:
        raise CodenameError(CodenameError.WORD_COUNT, count=len(found))
    secret = tuple(found[:CODENAME_WORDS])
    if check_index(secret) != found[CODENAME_WORDS]:
        raise CodenameError(CodenameError.CHECK_FAILED)
    return Codename(secret)
