"""Writes the conversation vectors both test suites read, and the browser's word list.

Run from the checkout: ``.venv/bin/python -m tests.make_conversation_vectors``.
It rewrites ``tests/vectors/conversation.json`` (every value computed by the
Python implementation, relay/conversation) and
``relay/web/js/conversation/wordlist.js`` (the same 7776 words as
relay/conversation/wordlist_en_eff.txt). Its output is deterministic: running
it again changes nothing unless the code did. tests/test_conversation_vectors.py
checks both files against a fresh run, and relay/web/js against the vectors.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from relay.container import tarformat
from relay.conversation.codename import (
    Codename,
    CodenameError,
    check_index,
    encode_check_input,
    fold_codename,
)
from relay.conversation.derivation import (
    KDF_VERSION,
    PBKDF2_ITERATIONS,
    codename_salt,
    derive_conversation_keys,
    encode_indices,
)
from relay.conversation.identity import reply_identity
from relay.conversation.reply import ReplyError, build_reply, read_reply, reply_mac
from relay.conversation.slots import (
    DEFAULT_RING_SIZE,
    delete_token,
    delete_token_hash,
    slot_of_reply,
    slot_tag,
)
from relay.conversation.wordlist import WORDLIST_SHA256, words
from relay.crypto import primitives

ROOT = Path(__file__).resolve().parent.parent
VECTORS_PATH = ROOT / "tests" / "vectors" / "conversation.json"
JS_WORDLIST_PATH = ROOT / "relay" / "web" / "js" / "conversation" / "wordlist.js"

RING_SIZE = DEFAULT_RING_SIZE
REPLY_NUMBERS = (1, 2, 15, 16, 17, 33)

# (indices, relay salt, typed variants of the codename that must fold to the indices)
CODENAMES: list[tuple[tuple[int, ...], bytes, list[str]]] = [
    (
        (0, 1, 2, 3, 4, 5, 7775),  # abacus abdomen abdominal abide abiding ability zoom
        bytes(32),
        [
            "abacus abdomen abdominal abide abiding ability zoom",
            "  ABACUS   Abdomen\tabdominal\nabide\r\nabiding ability ZOOM  ",
            "abacus-abdomen-abdominal-abide-abiding-ability-zoom",
            "abacus\u00a0abdomen\u2003abdominal\u3000abide\u202fabiding ability zoom",
            "ab\u200bacus abdo\u200dmen abdominal\u00ad abide\ufeff abiding ability zo\u2060om",
            "аbасus аbdоmеn аbdоminаl аbidе аbiding аbility zооm",  # Cyrillic а с о е
            "ФИФСГЫ ФИВЩЬУТ ФИВЩЬШТФД ФИШВУ ФИШВШТП ФИШДШЕН ЯЩЩЬ",  # ЙЦУКЕН, caps lock
            "ＡＢＡＣＵＳ abdomen abdominal abide abiding ability zoom",  # full width
            "abacus, abdomen, abdominal, abide, abiding, ability, zoom.",
        ],
    ),
    (
        (904, 6342, 6336, 7580, 1794, 3031, 7690),
        bytes(range(32)),
        [],
    ),
    (
        (7775, 7775, 7775, 7775, 7775, 7775, 0),
        bytes.fromhex("ff" * 32),
        ["zoom zoom zoom zoom zoom zoom abacus", "ЯЩЩЬ zооm ZOOM ящщь zoom ZоOM аbасus"],
    ),
]

# typed input -> expected outcome, beyond the variants above
EXTRA_TYPED = [
    "t-shirt yo-yo drop-down felt-tip yoyo down shirt",
    "T SHIRT yo yo drop down felt tip yoyo down shirt",
    "е-ыршке нщ-нщ вкщз-вщцт ауде-ешз нщнщ вщцт ыршке",  # the same, ЙЦУКЕН, Russian
    "іефегі status STATUS іефегі ыефегы status status",  # Ukrainian і on the s key
    "iсіng ісіng ICING іcing ісing ICІNG icing",  # Ukrainian/Belarusian і look-alike
    "ѕһаdу ѕһаdу ԁаtа ԛuаlіtу ԝаtеr ѕtаtuѕ еxасt",
    # 8 words: the 7, then their check word
    "abacus abdomen abdominal abide abiding ability zoom splurge",
    "catching stereo stegosaur waking diligent ground wooing dictation",
    # the Latin letters written one for one in Cyrillic (TRANSLIT), q w x as Latin
    "цатцхинг стерео стегосаур wакинг дилигент гроунд wооинг дицтатион",
    "ЦАТЦХІНГ Стерео стеґосаур wакінг ділігент ґроунд wооінг діцтатіон",
    "гранола утилиты аутхентиц амбитион qуалиты боxер sake wавинг",
    "гранола утіліти аутхентіц амбітіон qуаліти боxер sake wавінг",  # Ukrainian: и is y
]

INVALID = [
    "",
    "   \u200b\t ",
    "abacus",
    "abacus abdomen abdominal abide abiding ability",
    "abacus abdomen abdominal abide abiding ability zoom zoom",
    "abacus abdomen abdominal abide abiding ability zoomm",
    "abacus abdomen abdominnal abide abiding ability zoom",
    "yo abacus abdomen abdominal abide abiding ability",
    "abacus abdomen abdominal abide abiding ability t",
    "abacus abdomen abdominal abide abiding ability zoom" + " " * 1000,
    "abacus abdomen abdominal abide abiding ability zооm\u0301",
    "αbacus abdomen abdominal abide abiding ability zoom",  # Greek alpha: not folded
    "abacus abdomen abdominal abide abiding ability zщщь",  # mixed: no layout reading
    # 8 list words that fail the check: two swapped, one mistyped into another word
    "abacus abdomen abdominal abide abiding zoom ability splurge",
    "abdomen abacus abdominal abide abiding ability zoom splurge",
    "abacus abdomen abdominal abide abiding ability zoom splurgy",
    "abacus abdomen abdominal abide abiding ability zoom abacus",
    "catching stereo stegosaur waking diligent ground wooing dictation zoom",
    "abacus abdomen abdominal abide abiding ability zoom splurge abacus abacus",
    # мауве reads first as look-alike "maybe", not "mauve": the check word catches it
    "мауве abdomen abdominal abide abiding ability zoom splurge",
    "гранола утилиты аутхентиц амбитион qуалиты боxер саке wавинг",  # саке: "cake"
]

CHECK_SAMPLES = 64
"""Seeded random indices whose check words both implementations must agree on."""


def _check_vectors() -> list[dict[str, Any]]:
    rng = random.Random(23)
    samples = [(0,) * 7, (7775,) * 7, (0, 1, 2, 3, 4, 5, 7775)]
    samples += [tuple(rng.randrange(7776) for _ in range(7)) for _ in range(CHECK_SAMPLES)]
    return [
        {"indices": list(indices), "input": encode_check_input(indices).hex(),
         "check": check_index(indices)}
        for indices in samples
    ]  # fmt: skip


def _fold_outcome(text: str) -> dict[str, Any]:
    try:
        codename = fold_codename(text)
    except CodenameError as exc:
        return {"input": text, "error": exc.kind, "position": exc.position, "count": exc.count}
    return {"input": text, "indices": list(codename.indices)}


def _codename_vector(indices: tuple[int, ...], relay_salt: bytes, typed: list[str]) -> Any:
    codename = Codename(indices)
    keys = derive_conversation_keys(codename, relay_salt)
    salt = codename_salt(relay_salt)
    ikm = primitives.pbkdf2_sha256(encode_indices(codename), salt, PBKDF2_ITERATIONS)
    slots = []
    for n in REPLY_NUMBERS:
        slot = slot_of_reply(n, RING_SIZE)
        token = delete_token(keys.delete_key, slot)
        slots.append({
            "n": n,
            "slot": slot,
            "tag": slot_tag(keys.slot_key, slot).hex(),
            "delete_token": token.hex(),
            "delete_token_hash": delete_token_hash(token).hex(),
        })  # fmt: skip
    for text in typed:
        assert fold_codename(text).indices == indices, text
    return {
        "indices": list(indices),
        "words": str(codename),
        "check": codename.check,
        "typed": [str(codename), *typed],
        "relay_salt": relay_salt.hex(),
        "password": encode_indices(codename).hex(),
        "salt": salt.hex(),
        "ikm": ikm.hex(),
        "prk": primitives.hkdf_extract(salt, ikm).hex(),
        "reply_identity_secret": keys.reply_identity_secret.hex(),
        "reply_identity": str(reply_identity(keys)),
        "reply_recipient": str(keys.reply_recipient),
        "slot_key": keys.slot_key.hex(),
        "auth_key": keys.auth_key.hex(),
        "delete_key": keys.delete_key.hex(),
        "conversation_id": keys.conversation_id.hex(),
        "fields": keys.reply_keys().to_fields(),
        "slots": slots,
    }


def _pax_prefixed(container: bytes) -> bytes:
    """``container`` behind a pax header that names its first member again."""
    record = tarformat.pax_record("path", "reply.mac")
    header = tarformat.header_block(b"././@PaxHeader", len(record), tarformat.PAX_HEADER)
    return header + record + tarformat.padding_after(len(record)) + container


def _reply_vectors(codenames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first, second = codenames[0], codenames[1]
    auth, cid = bytes.fromhex(first["auth_key"]), bytes.fromhex(first["conversation_id"])
    other_auth = bytes.fromhex(second["auth_key"])
    other_cid = bytes.fromhex(second["conversation_id"])
    files = [("Адрес и план.txt", "Встреча во вторник.\n".encode()), ("map.png", bytes(range(256)))]
    genuine = build_reply(
        auth_key=auth,
        conversation_id=cid,
        n=17,
        day="2026-12-03",
        message="Мы получили ваше сообщение.\nWe read you.",
        attachments=files,
    )
    plain = build_reply(auth_key=auth, conversation_id=cid, n=2, day="2026-12-04", message="ok")
    tampered_file = bytearray(genuine)
    tampered_file[genuine.index("Встреча".encode())] ^= 1
    tampered_meta = bytearray(genuine)
    tampered_meta[genuine.index(b'"n": 17') + 6] = ord("8")
    cases = [
        ("genuine", genuine, 0, 1),
        ("genuine, no attachments", plain, 0, 2),
        (
            "forged: right tag, no auth key",
            build_reply(
                auth_key=bytes(32), conversation_id=cid, n=17, day="2026-12-03", message="forged"
            ),
            0,
            1,
        ),
        ("moved to another slot", genuine, 0, 2),
        (
            "of another conversation (its own keys)",
            build_reply(
                auth_key=other_auth, conversation_id=other_cid, n=1, day="2026-12-03", message="x"
            ),
            0,
            1,
        ),
        (
            "of another conversation id under this auth key",
            build_reply(
                auth_key=auth, conversation_id=other_cid, n=1, day="2026-12-03", message="x"
            ),
            0,
            1,
        ),
        ("a file changed after the MAC", bytes(tampered_file), 0, 1),
        ("reply.json changed after the MAC", bytes(tampered_meta), 0, 1),
        ("cut after reply.json", genuine[: 2048 + 1024], 0, 1),
        ("a pax header before reply.mac", _pax_prefixed(genuine), 0, 1),
        ("not a tar", bytes(range(256)) * 8, 0, 1),
        ("empty", b"", 0, 1),
        ("padding not zero", genuine[:-1] + b"\x01", 0, 1),
    ]
    out = []
    for label, data, which, slot in cases:
        keys = codenames[which]
        vector: dict[str, Any] = {
            "label": label,
            "codename": which,
            "slot": slot,
            "ring_size": RING_SIZE,
            "plaintext": data.hex(),
        }
        try:
            reply = read_reply(data, auth_key=bytes.fromhex(keys["auth_key"]),
                               conversation_id=bytes.fromhex(keys["conversation_id"]),
                               slot=slot, ring_size=RING_SIZE)  # fmt: skip
        except ReplyError as exc:
            vector["error"] = exc.kind
        else:
            meta_start, meta_size = 1536, int(data[1024 + 124 : 1024 + 135], 8)
            vector["mac"] = reply_mac(auth, data[meta_start : meta_start + meta_size]).hex()
            vector["reply"] = {
                "n": reply.n,
                "day": reply.day,
                "message": reply.message,
                "attachments": [
                    {"name": a.name, "sha256": primitives.sha256(a.data).hex()}
                    for a in reply.attachments
                ],
            }
        out.append(vector)
    return out


def make_vectors() -> dict[str, Any]:
    """The whole vectors file, as a JSON-ready object."""
    codenames = [_codename_vector(*entry) for entry in CODENAMES]
    return {
        "about": "tiprelay conversation vectors; made by python -m tests.make_conversation_vectors"
        " (do not edit by hand). Spec: docs/conversations.md.",
        "kdf": KDF_VERSION,
        "pbkdf2_iterations": PBKDF2_ITERATIONS,
        "ring_size": RING_SIZE,
        "wordlist_sha256": WORDLIST_SHA256,
        "codenames": codenames,
        "folding": [_fold_outcome(text) for text in EXTRA_TYPED + INVALID],
        "checks": _check_vectors(),
        "replies": _reply_vectors(codenames),
    }


def render_vectors() -> str:
    return json.dumps(make_vectors(), ensure_ascii=False, indent=1) + "\n"


def render_js_wordlist() -> str:
    return (
        "// Generated by python -m tests.make_conversation_vectors from\n"
        "// relay/conversation/wordlist_en_eff.txt: the EFF Large Wordlist for\n"
        "// Passphrases, Electronic Frontier Foundation, CC BY 3.0 US (see\n"
        "// relay/conversation/WORDLIST-NOTICE.md). Index = position. Do not edit.\n"
        f'const LIST = "{" ".join(words())}";\n'
        "\n"
        "/** The 7776 codename words, in index order. */\n"
        'export const WORDS = Object.freeze(LIST.split(" "));\n'
    )


def main() -> None:
    VECTORS_PATH.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_PATH.write_text(render_vectors(), encoding="utf-8")
    JS_WORDLIST_PATH.parent.mkdir(parents=True, exist_ok=True)
    JS_WORDLIST_PATH.write_text(render_js_wordlist(), encoding="utf-8")
    print(f"wrote {VECTORS_PATH.relative_to(ROOT)} and {JS_WORDLIST_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
