"""Python and the browser's JS agree on every conversation vector.

tests/vectors/conversation.json is written by tests/make_conversation_vectors.py
from the Python implementation; the Python side must reproduce it exactly (so a
change to the protocol shows up as a diff of the committed file), and Node runs
relay/web/js/conversation on the same file and must compute the same values:
folded codenames, every derived key, slot tags, delete tokens, reply checks.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

from relay.conversation.codename import (
    LAYOUT,
    LOOKALIKE,
    MAX_INPUT_CHARS,
    Codename,
    CodenameError,
    fold_codename,
)
from relay.conversation.derivation import ReplyKeys, derive_conversation_keys
from relay.conversation.identity import open_reply
from relay.conversation.reply import ReplyError, ReplyLimits, build_reply
from relay.conversation.slots import DEFAULT_RING_SIZE
from relay.conversation.wordlist import words
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.crypto.recipients import X25519Recipient
from tests.make_conversation_vectors import (
    JS_WORDLIST_PATH,
    VECTORS_PATH,
    render_js_wordlist,
    render_vectors,
)
from tests.support_node import NODE

ROOT = Path(__file__).resolve().parent.parent
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def run_node(spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"vectors": str(VECTORS_PATH), **spec}))
    result = subprocess.run(
        [str(NODE), str(ROOT / "tests" / "js" / "conversation.mjs"), str(spec_path)],
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_committed_vectors_are_what_the_python_implementation_computes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render_vectors()
    assert JS_WORDLIST_PATH.read_text(encoding="utf-8") == render_js_wordlist()


def test_vectors_cover_every_typed_variant_and_every_reply_outcome() -> None:
    typed = [text for vector in VECTORS["codenames"] for text in vector["typed"]]
    assert any("\u200b" in t for t in typed) and any("ФИФСГЫ" in t for t in typed)
    assert any("а" in t and "b" in t for t in typed)  # look-alike Cyrillic among Latin
    kinds = {item.get("error") for item in VECTORS["folding"]}
    assert kinds == {None, "empty", "word_count", "unknown_word", "too_long", "check_failed"}
    assert any(len(item["input"].split()) == 8 and "indices" in item for item in VECTORS["folding"])
    assert any("гранола" in item["input"] and "indices" in item for item in VECTORS["folding"])
    outcomes = {item.get("error") for item in VECTORS["replies"]}
    assert outcomes == {None, "not_authentic", "wrong_conversation", "wrong_slot",
                        "entries_mismatch", "malformed"}  # fmt: skip


def test_js_computes_every_vector_exactly_as_python(tmp_path: Path) -> None:
    output = run_node({}, tmp_path)
    assert output["wordlist"] == [line.split("\t")[1] for line in
                                  (ROOT / "relay/conversation/wordlist_en_eff.txt")
                                  .read_text().splitlines()]  # fmt: skip
    limits = ReplyLimits()
    assert output["constants"] == {
        "limits": {"maxReplyBytes": limits.max_reply_bytes, "maxEntries": limits.max_entries,
                   "maxMetaBytes": limits.max_meta_bytes,
                   "maxPaxHeaderBytes": limits.max_pax_header_bytes},
        "ring_size": DEFAULT_RING_SIZE,
        "max_input_chars": MAX_INPUT_CHARS,
    }  # fmt: skip
    for js, vector in zip(output["codenames"], VECTORS["codenames"], strict=True):
        assert js.pop("typed") == [vector["indices"]] * len(vector["typed"])
        assert js == {key: vector[key] for key in js}
    assert output["folding"] == VECTORS["folding"]
    assert output["checks"] == [item["check"] for item in VECTORS["checks"]]
    expected = [{k: v for k, v in item.items() if k in ("error", "reply")}
                for item in VECTORS["replies"]]  # fmt: skip
    assert output["replies"] == expected


def test_js_opens_an_age_encrypted_reply_and_refuses_forgeries(tmp_path: Path) -> None:
    vector = VECTORS["codenames"][0]
    team = ReplyKeys.from_fields(vector["fields"])
    other = X25519Identity.generate()
    genuine = build_reply(auth_key=team.auth_key, conversation_id=team.conversation_id, n=3,
                          day="2026-12-03", message="Приходите в среду.")  # fmt: skip
    forged = build_reply(auth_key=bytes(32), conversation_id=team.conversation_id, n=3,
                         day="2026-12-03", message="forged")  # fmt: skip
    cases = [
        (encrypt_bytes(genuine, [team.reply_recipient, other.recipient]), 3, None),
        (encrypt_bytes(genuine, [team.reply_recipient]), 4, "wrong_slot"),
        (encrypt_bytes(forged, [team.reply_recipient]), 3, "not_authentic"),
        (encrypt_bytes(genuine, [other.recipient]), 3, "not_authentic"),
        (b"not an age file", 3, "not_authentic"),
    ]
    output = run_node(
        {"open": [{"codename": 0, "slot": slot, "ciphertext": ct.hex()} for ct, slot, _ in cases]},
        tmp_path,
    )
    keys = derive_conversation_keys(Codename(tuple(vector["indices"])),
                                    bytes.fromhex(vector["relay_salt"]))  # fmt: skip
    for (ciphertext, slot, error), js in zip(cases, output["opened"], strict=True):
        assert js.get("error") == error
        try:
            python = open_reply(ciphertext, keys, slot)
        except ReplyError as exc:
            assert exc.kind == error
        else:
            assert error is None
            assert js["reply"]["message"] == python.message == "Приходите в среду."
    assert str(keys.reply_recipient) == vector["reply_recipient"]
    assert isinstance(team.reply_recipient, X25519Recipient)


def _fold_outcome(text: str) -> dict[str, Any]:
    try:
        return {"input": text, "indices": list(fold_codename(text).indices)}
    except CodenameError as exc:
        return {"input": text, "error": exc.kind, "position": exc.position, "count": exc.count}


def test_js_folds_random_typed_input_exactly_as_python(tmp_path: Path) -> None:
    # Beyond the vectors: real words mangled every way folding knows, plus the
    # characters around its edges (Greek, combining marks, full width, odd
    # spaces, Cyrillic with no Latin twin), so that the two engines' NFKC and
    # lower case are compared on them too.
    rng = random.Random(9)
    noise = list("αοεΙΚ\u0301\u0308ＡＢｚ\u00a0\u2009\u200b\u00ad\tёЁъЪїґЇ-–_.,İıßẞﬁ ")
    lookalikes = {latin: cyr for cyr, latin in LOOKALIKE.items()}
    layout = {latin: cyr for cyr, latin in LAYOUT.items() if cyr != "і"}
    inputs = []
    for _ in range(600):
        chosen = [rng.choice(words()) for _ in range(rng.choice([6, 7, 7, 7, 8]))]
        typed = []
        for word in chosen:
            style = rng.randrange(5)
            if style == 1:
                word = word.upper()
            elif style == 2:
                word = "".join(lookalikes.get(c, c) if rng.random() < 0.5 else c for c in word)
            elif style == 3:
                word = "".join(layout.get(c, c) for c in word)
            if rng.random() < 0.3:
                at = rng.randrange(len(word) + 1)
                word = word[:at] + rng.choice(noise) + word[at:]
            typed.append(word)
        inputs.append(rng.choice([" ", "  ", "\n", "-", " \u3000"]).join(typed))
    output = run_node({"fold": inputs}, tmp_path)
    assert output["folded"] == [_fold_outcome(text) for text in inputs]
    outcomes = {item.get("error") for item in output["folded"]}
    assert outcomes >= {None, "unknown_word", "word_count"}


def test_js_generates_uniform_codenames(tmp_path: Path) -> None:
    generated = run_node({"generate": 500}, tmp_path)["generated"]
    assert len({tuple(c) for c in generated}) == 500
    assert all(len(c) == 7 and all(0 <= i < 7776 for i in c) for c in generated)
    flat = [i for c in generated for i in c]
    assert max(flat) > 7000 and min(flat) < 700  # the whole range, not 13 bits cut short
