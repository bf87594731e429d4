"""Codenames: the pinned word list, CSPRNG generation, and folding of typed input.

The folding must give the same 7 indices however the source types the words
(case, spacing, invisible characters, look-alike Cyrillic letters, a Russian or
Ukrainian keyboard layout left on), must never let two list words fold to the
same thing, and must say which word is wrong when one is.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.conversation import codename as codename_module
from relay.conversation.codename import (
    CODENAME_WORDS,
    LAYOUT,
    LOOKALIKE,
    MAX_INPUT_CHARS,
    TRANSLIT,
    TRANSLIT_UK,
    WRITTEN_WORDS,
    Codename,
    CodenameError,
    check_index,
    fold_codename,
    generate_codename,
    read_token,
    translit_letters,
)
from relay.conversation.wordlist import WORDLIST_PATH, WORDLIST_SIZE, word_index, words

PINNED_WORDLIST_SHA256 = "addd35536511597a02fa0a9ff1e5284677b8883b83e986e43f15a3db996b903e"
LATIN_TO_LAYOUT = {latin: cyrillic for cyrillic, latin in LAYOUT.items() if cyrillic != "і"}
LATIN_TO_LOOKALIKES: dict[str, list[str]] = {}
for _cyrillic, _latin in LOOKALIKE.items():
    LATIN_TO_LOOKALIKES.setdefault(_latin, []).append(_cyrillic)


def test_word_list_is_the_pinned_eff_large_list_of_7776_distinct_words() -> None:
    assert hashlib.sha256(WORDLIST_PATH.read_bytes()).hexdigest() == PINNED_WORDLIST_SHA256
    assert len(words()) == WORDLIST_SIZE == 6**5
    assert len(set(words())) == WORDLIST_SIZE
    assert words()[0] == "abacus" and words()[-1] == "zoom"
    assert all(set(word) <= set("abcdefghijklmnopqrstuvwxyz-") for word in words())


def test_every_word_folds_to_itself_and_no_two_words_fold_alike() -> None:
    folded = {}
    for index, word in enumerate(words()):
        typed_forms = [word, word.upper(), word.replace("-", " "), "".join(
            LATIN_TO_LAYOUT.get(char, char) for char in word)]  # fmt: skip
        for typed in typed_forms:
            tokens = codename_module.split_tokens(typed)
            readings = tuple(read_token(token) for token in tokens)
            assert all(r is not None for r in readings), typed
            folded.setdefault(readings, set()).add(index)
            assert fold_codename(" ".join([typed] * CODENAME_WORDS)).indices == (index,) * 7
    assert all(len(indices) == 1 for indices in folded.values())


def test_no_half_of_a_hyphenated_word_is_a_word_so_joining_is_unambiguous() -> None:
    hyphenated = [word for word in words() if "-" in word]
    assert sorted(hyphenated) == ["drop-down", "felt-tip", "t-shirt", "yo-yo"]
    for word in hyphenated:
        first, second = word.split("-")
        assert first not in word_index()
        assert f"{first}-{second}" in word_index()


def test_no_all_cyrillic_token_reads_as_two_different_pieces() -> None:
    # A token's look-alike reading and its keyboard-layout reading must never be
    # two different word pieces: then the reading order in step 5 cannot matter.
    # Mixed-script tokens have no layout reading, so only all-Cyrillic ones count.
    pieces = codename_module._PIECES
    clashes = []
    for piece in pieces:
        options = [LATIN_TO_LOOKALIKES.get(char, []) for char in piece]
        if not all(options):
            continue
        for letters in itertools.product(*options):
            if all(letter in LAYOUT for letter in letters):
                layout_reading = "".join(LAYOUT[letter] for letter in letters)
                if layout_reading in pieces and layout_reading != piece:
                    clashes.append((piece, "".join(letters), layout_reading))
    assert clashes == []


def test_generated_codenames_are_seven_uniform_indices() -> None:
    codenames = [generate_codename() for _ in range(2000)]
    assert len({c.indices for c in codenames}) == len(codenames)
    counts = Counter(i for c in codenames for i in c.indices)
    assert all(0 <= i < WORDLIST_SIZE for i in counts)
    # 14000 draws over 7776 values: every sixth of the range gets about a sixth.
    sixths = Counter(i * 6 // WORDLIST_SIZE for i in counts.elements())
    assert all(abs(n - 14000 / 6) < 300 for n in sixths.values())
    assert all(fold_codename(str(c)) == c for c in codenames[:50])


def test_codename_never_shows_its_words_in_repr() -> None:
    codename = generate_codename()
    assert len(str(codename).split()) == 8  # the 7 words, then the check word
    # A fixed text: no part of the codename, whatever its words (the list has
    # "name" and "secret", so a substring check would fail by chance).
    assert repr(codename) == "Codename(<secret>)"
    with pytest.raises(ValueError):
        Codename((1, 2, 3))
    with pytest.raises(ValueError):
        Codename((0, 0, 0, 0, 0, 0, WORDLIST_SIZE))


@pytest.mark.parametrize(
    ("text", "kind", "position", "count"),
    [
        ("", "empty", None, None),
        ("\u200b \t\n", "empty", None, None),
        ("abacus zoom", "word_count", None, 2),
        ("abacus " * 9, "word_count", None, 9),
        ("abacus " * 8, "check_failed", None, None),
        ("abacus zoom abacus zoom abacus zoom abacuss", "unknown_word", 7, None),
        ("abacus zoomx abacus zoom abacus zoom abacus", "unknown_word", 2, None),
        ("t-shirt yo-yo abacus abacus abacus qwerty abacus", "unknown_word", 6, None),
        ("x" * (MAX_INPUT_CHARS + 1), "too_long", None, None),
    ],
)
def test_input_that_is_not_seven_list_words_gets_its_own_error(
    text: str, kind: str, position: int | None, count: int | None
) -> None:
    with pytest.raises(CodenameError) as caught:
        fold_codename(text)
    assert (caught.value.kind, caught.value.position, caught.value.count) == (kind, position, count)
    assert str(caught.value)  # a sentence for the page


def _spacing() -> st.SearchStrategy[str]:
    return st.text(
        alphabet=st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "-", "\u2013"]),
        min_size=1,
        max_size=3,
    )


@st.composite
def typed_codename(draw: st.DrawFn) -> tuple[Codename, str]:
    """A codename and one way a source might type it."""
    indices = tuple(draw(st.integers(0, WORDLIST_SIZE - 1)) for _ in range(CODENAME_WORDS))
    typed_words = []
    for index in indices:
        word = words()[index]
        style = draw(st.sampled_from(["plain", "upper", "random case", "lookalike", "layout"]))
        if style == "upper":
            word = word.upper()
        elif style == "random case":
            word = "".join(c.upper() if draw(st.booleans()) else c for c in word)
        elif style == "lookalike":
            word = "".join(
                draw(st.sampled_from([c, *LATIN_TO_LOOKALIKES.get(c, [])])) for c in word
            )
        elif style == "layout":
            word = "".join(LATIN_TO_LAYOUT.get(c, c) for c in word)
            if draw(st.booleans()):
                word = word.upper()
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(word)))
            invisible = draw(st.sampled_from(["\u200b", "\u200d", "\ufeff", "\u00ad"]))
            word = word[:cut] + invisible + word[cut:]
        typed_words.append(word)
    separators = [draw(_spacing()) for _ in range(CODENAME_WORDS - 1)]
    text = typed_words[0] + "".join(s + w for s, w in zip(separators, typed_words[1:], strict=True))
    text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " ", "\t"]))
    return Codename(indices), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_codename())
def test_any_typed_variant_folds_to_the_same_indices(case: tuple[Codename, str]) -> None:
    codename, text = case
    assert fold_codename(text) == codename


LATIN_TO_TRANSLIT: dict[str, list[str]] = {}
for _cyrillic, _latin in TRANSLIT.items():
    LATIN_TO_TRANSLIT.setdefault(_latin, []).append(_cyrillic)
LATIN_TO_TRANSLIT_UK: dict[str, list[str]] = {}
for _cyrillic, _latin in TRANSLIT_UK.items():
    if _cyrillic not in "ыэ":
        LATIN_TO_TRANSLIT_UK.setdefault(_latin, []).append(_cyrillic)

TRANSLIT_MISREADS = {
    "ru": {"mauve": "maybe", "duty": "lens", "sake": "cake"},
    "uk": {"mauve": "maybe", "flyer": "flier", "sake": "cake"},
}
"""The only words whose letter-for-letter Cyrillic spelling reads first as
another word (look-alikes, the layout and the Russian table come first): мауве
is look-alike "maybe", дуты ЙЦУКЕН "lens", саке look-alike "cake", and
Ukrainian флиер Russian-table "flier". The check word catches them as it
catches any wrong word (docs/conversations.md)."""


@pytest.mark.parametrize("language", ["ru", "uk"])
def test_every_word_written_letter_for_letter_in_cyrillic_reads_as_itself(language: str) -> None:
    latin_to_cyrillic = LATIN_TO_TRANSLIT if language == "ru" else LATIN_TO_TRANSLIT_UK
    misread: dict[str, set[str | None]] = {}
    spellings = 0
    for piece in codename_module._PIECES - {w for w in words() if "-" in w}:  # halves count
        options = [latin_to_cyrillic.get(char, [char]) for char in piece]  # q w x stay Latin
        for letters in itertools.product(*options):
            spellings += 1
            reading = read_token("".join(letters))
            if reading != piece:
                misread.setdefault(piece, set()).add(reading)
    assert spellings > 29_000
    assert misread == {word: {other} for word, other in TRANSLIT_MISREADS[language].items()}
    assert fold_codename("гранола утилиты аутхентиц амбитион qуалиты боxер sake") == fold_codename(
        "granola utility authentic ambition quality boxer sake"
    )
    assert fold_codename("гранола утіліти аутхентіц амбітіон qуаліти боxер sake") == fold_codename(
        "granola utility authentic ambition quality boxer sake"
    )


def test_generated_codenames_are_written_as_eight_words_that_fold_back_checked() -> None:
    for _ in range(50):
        codename = generate_codename()
        assert len(codename.written_words) == WRITTEN_WORDS
        assert codename.written_words[-1] == words()[check_index(codename.indices)]
        folded = fold_codename(str(codename))
        assert folded == codename and folded.checked
        old = fold_codename(" ".join(codename.words))  # an old 7-word codename
        assert old == codename and not old.checked


def test_the_check_word_catches_over_99_9_percent_of_substitutions_and_adjacent_swaps() -> None:
    # Every single-word substitution (by any other list word, in any of the 8
    # places) and every adjacent swap of distinct words, over seeded codenames.
    # Expected pass rate of a random error: 1/7776 for a change in words 1-7,
    # none for the check word itself.
    import random

    rng = random.Random(23)
    substitutions = caught_substitutions = swaps = caught_swaps = 0
    for _ in range(4):
        secret = tuple(rng.randrange(WORDLIST_SIZE) for _ in range(CODENAME_WORDS))
        written = [*secret, check_index(secret)]
        for place in range(WRITTEN_WORDS):
            for other in range(WORDLIST_SIZE):
                if other == written[place]:
                    continue
                typed = written.copy()
                typed[place] = other
                substitutions += 1
                caught_substitutions += check_index(tuple(typed[:7])) != typed[7]
        for place in range(WRITTEN_WORDS - 1):
            typed = written.copy()
            typed[place], typed[place + 1] = typed[place + 1], typed[place]
            if typed != written:
                swaps += 1
                caught_swaps += check_index(tuple(typed[:7])) != typed[7]
    assert substitutions == 4 * WRITTEN_WORDS * (WORDLIST_SIZE - 1)
    rate = caught_substitutions / substitutions
    print(f"check word: {rate:.5%} of {substitutions} substitutions, "
          f"{caught_swaps}/{swaps} adjacent swaps caught")  # fmt: skip
    assert rate >= 0.999
    assert swaps >= 24 and caught_swaps == swaps
    with pytest.raises(CodenameError) as caught:
        fold_codename(" ".join(words()[i] for i in written[1::-1] + written[2:]))
    assert caught.value.kind == "check_failed"


@pytest.mark.parametrize("language", ["ru", "uk", "en"])
def test_the_pages_table_of_cyrillic_letters_is_what_folding_reads(language: str) -> None:
    shown = translit_letters(language)
    assert [latin for latin, _ in shown] == list("abcdefghijklmnopqrstuvwxyz")
    for latin, cyrillic in shown:
        for letter in cyrillic.split():
            # Each letter shown for a Latin letter reads as it in one transliteration.
            assert letter == latin or latin in (TRANSLIT.get(letter), TRANSLIT_UK.get(letter))
    assert dict(shown)["y"] == ("и" if language == "uk" else "ы")
