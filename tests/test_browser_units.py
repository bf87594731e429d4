"""The browser code (relay/web/js) computes exactly what its Python twins do.

Node runs the same ES modules that esbuild bundles for the page, on the same
inputs: Padmé lengths, recipient-set fingerprints, attachment names, and whole
submission archives (the tar container, byte for byte, given the same day).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from relay.container.names import NameAllocator, sanitize_name
from relay.container.writer import build_archive
from relay.conversation.codename import generate_codename
from relay.conversation.derivation import codename_fields, derive_conversation_keys
from relay.crypto.padding import padme_length
from relay.fingerprint import recipient_set_fingerprint
from tests.support_node import NODE

ROOT = Path(__file__).resolve().parent.parent
JS_HELPERS = ROOT / "tests" / "js"


RECIPIENT_A = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
RECIPIENT_B = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"
RECIPIENT_C = "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t"
OPENPGP_RECIPIENT = "openpgp:15F878B655635C62D95C5C601B7B14916FE87677"

HOSTILE_NAMES = [
    "report.pdf",
    "../../etc/passwd",
    "C:\\Users\\x\\Отчёт за 2024 год.docx",
    "  .hidden file.txt  ",
    "-rf",
    "CON.txt",
    "com¹",
    "a\u202etxt.exe",
    "tab\there\nnewline.txt",
    "noto\u00a0break\u2003space.txt",
    'bad<>:"|?*chars.txt',
    "Report.PDF",
    "report.pdf",
    "straße.txt",
    "STRASSE.txt",
    "e\u0301clair.txt",
    "\u00e9clair.txt",
    "",
    "...",
    "x" * 300 + ".tar.gz",
    "я" * 150 + ".txt",
    "日本語のファイル名.jpg",
    "emoji 😀 file.png",
    "file." + "e" * 40,
    "trailing dots...",
    "👩‍👩‍👧 family.txt",
]


def run_units(payload: dict[str, object], tmp_path: Path) -> dict[str, list[object]]:
    spec = tmp_path / "units.json"
    spec.write_text(json.dumps(payload))
    result = subprocess.run(
        [str(NODE), str(JS_HELPERS / "units.mjs"), str(spec)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    output: dict[str, list[object]] = json.loads(result.stdout)
    return output


def test_padme_in_js_equals_python_for_edge_and_random_lengths(tmp_path: Path) -> None:
    rng = random.Random(5)
    lengths = list(range(0, 1100))
    lengths += [2**k + d for k in range(1, 45) for d in (-1, 0, 1)]
    lengths += [rng.randrange(0, 2**42) for _ in range(3000)]
    result = run_units({"padme": lengths}, tmp_path)
    assert result["padme"] == [padme_length(n) for n in lengths]


def test_recipient_fingerprint_in_js_equals_python(tmp_path: Path) -> None:
    sets = [
        [RECIPIENT_A],
        [RECIPIENT_A, RECIPIENT_B],
        [RECIPIENT_B, RECIPIENT_A],
        [RECIPIENT_A, RECIPIENT_A, RECIPIENT_B],
        [RECIPIENT_C, RECIPIENT_B, RECIPIENT_A],
        # OpenPGP reviewers are in the set as openpgp:<FINGERPRINT> ("o" sorts after "a").
        [OPENPGP_RECIPIENT, RECIPIENT_A],
        [RECIPIENT_B, OPENPGP_RECIPIENT, RECIPIENT_A, OPENPGP_RECIPIENT],
        [OPENPGP_RECIPIENT],
    ]
    result = run_units({"fingerprint": sets}, tmp_path)
    assert result["fingerprint"] == [recipient_set_fingerprint(s) for s in sets]


def test_recipient_fingerprint_is_order_free_and_has_five_groups_of_four_hex() -> None:
    one = recipient_set_fingerprint([RECIPIENT_A, RECIPIENT_B])
    assert one == recipient_set_fingerprint([RECIPIENT_B, RECIPIENT_A, RECIPIENT_B])
    assert one != recipient_set_fingerprint([RECIPIENT_A])
    groups = one.split(" ")
    assert len(groups) == 5
    assert all(len(g) == 4 and set(g) <= set("0123456789abcdef") for g in groups)


def test_recipient_fingerprint_matches_its_documented_shell_recipe() -> None:
    recipe = (
        f"printf '%s\\n' {RECIPIENT_B} {RECIPIENT_A} {RECIPIENT_B} | LC_ALL=C sort -u"
        " | head -c -1 | sha256sum | cut -c1-20"
    )
    hex_digits = subprocess.run(
        ["bash", "-c", recipe], check=True, capture_output=True, text=True
    ).stdout.strip()
    grouped = " ".join(hex_digits[i : i + 4] for i in range(0, 20, 4))
    assert grouped == recipient_set_fingerprint([RECIPIENT_A, RECIPIENT_B])


def test_attachment_names_are_sanitised_and_deduplicated_the_same_in_js(tmp_path: Path) -> None:
    result = run_units({"names": HOSTILE_NAMES}, tmp_path)
    assert result["sanitized"] == [sanitize_name(name) for name in HOSTILE_NAMES]
    allocator = NameAllocator()
    assert result["allocated"] == [allocator.allocate(name) for name in HOSTILE_NAMES]


def test_random_hostile_names_get_the_same_stored_names_in_js(tmp_path: Path) -> None:
    alphabet = (
        "abcXYZ019 ._-()[]/\\<>:\"|?*~"  # separators, dots, Windows-forbidden
        "абвгдеёжзийЁЖЩЬЪїєґІЇЄҐ"  # Cyrillic, Ukrainian letters
        "\u0301\u0308"  # combining accents (NFC)
        "\u00a0\u2003\u3000"  # other spaces
        "\u200b\u200e\u202e\ufeff\x00\x07\n\t\x7f"  # format and control characters
        "ßẞİıIiÅÆſsSﬁﬀFIςσΣᾳᾼΑΙµμΜǅǆꭰᏠǰJK"  # letters whose case folding is special
        "日本😀👩\u200d👩"  # wide and astral characters, a ZWJ sequence
    )
    rng = random.Random(31)
    names = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3000)
    ]
    names += ["x" * rng.randrange(190, 260) + "." + "y" * rng.randrange(1, 20) for _ in range(40)]
    names += ["CON", "con.txt", "Com1.log", "lpt¹", "nul", "AUX.tar.gz"] * 2
    result = run_units({"names": names}, tmp_path)
    assert result["sanitized"] == [sanitize_name(name) for name in names]
    allocator = NameAllocator()
    assert result["allocated"] == [allocator.allocate(name) for name in names]


def build_with_node(spec: dict[str, object], tmp_path: Path) -> bytes:
    spec_path = tmp_path / "archive.json"
    spec_path.write_text(json.dumps(spec))
    result = subprocess.run(
        [str(NODE), str(JS_HELPERS / "build_archive.mjs"), str(spec_path)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("message", "sizes"),
    [
        ("", []),
        ("short", []),
        ("Привет! Це повідомлення.\nSecond line\n", [0, 1, 511, 512, 513]),
        ("x" * 70_000, [65_536, 100_003]),
    ],
)
def test_js_archive_is_byte_identical_to_relay_container(
    message: str, sizes: list[int], tmp_path: Path
) -> None:
    rng = random.Random(len(message) + sum(sizes))
    files = []
    for index, size in enumerate(sizes):
        name = HOSTILE_NAMES[(index * 7) % len(HOSTILE_NAMES)]
        path = tmp_path / f"input-{index}"
        path.write_bytes(rng.randbytes(size))
        files.append((name, path))
    spec = {
        "message": message,
        "language": "uk",
        "day": "2026-03-14",
        "files": [{"name": name, "path": str(path)} for name, path in files],
    }
    from_js = build_with_node(spec, tmp_path)
    from_python = build_archive(
        message,
        [(name, path.read_bytes()) for name, path in files],
        language="uk",
        sealed_by="browser",
        day="2026-03-14",
    )
    assert from_js == from_python


def test_js_archive_with_many_files_reads_back_with_stock_tar(tmp_path: Path) -> None:
    names = HOSTILE_NAMES[:12]
    files = []
    for index, name in enumerate(names):
        path = tmp_path / f"in{index}"
        path.write_bytes(f"file {index}: {name}".encode())
        files.append({"name": name, "path": str(path)})
    spec = {"message": "hello", "language": "ru", "day": "2026-01-02", "files": files}
    archive = tmp_path / "archive.tar"
    archive.write_bytes(build_with_node(spec, tmp_path))
    listing = subprocess.run(
        ["tar", "-tvf", str(archive)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert len(listing) == 2 + len(names)
    assert all(line.startswith("-rw-r--r-- 0/0") for line in listing)
    assert all("1970-01-01 00:00" in line for line in listing)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out)], check=True)
    meta = json.loads((out / "submission.json").read_text())
    assert meta == {
        "day": "2026-01-02",
        "format_version": 1,
        "language": "ru",
        "sealed_by": "browser",
    }
    assert (out / "message.txt").read_text() == "hello"


@pytest.mark.parametrize("language", ["ru", "uk", "en"])
def test_every_text_the_script_shows_is_in_the_page_language(language: str) -> None:
    from relay.server.browser_page import MESSAGES
    from relay.server.i18n import SOURCE_LANGUAGE, translations

    gettext = translations(language).gettext
    for key, text in MESSAGES.items():
        shown = gettext(text)
        if language == SOURCE_LANGUAGE:
            assert shown == text, f"the English page would show a translation of {key!r}"
        else:
            assert shown != text, f"{key!r} is not translated into {language}"
            assert any("\u0400" <= char <= "\u04ff" for char in shown), (key, shown)


@pytest.mark.parametrize("message", ["", "The same short message", "ж" * 9000])
def test_one_off_and_conversation_archives_are_one_size_in_python_and_js(
    message: str, tmp_path: Path
) -> None:
    """Whatever a tip's conversation object (none, the browser's derived fields, a
    sealed codename), its archive has one length, and JS writes Python's bytes."""
    codename = generate_codename()
    salt = bytes(range(32))
    derived = derive_conversation_keys(codename, salt).reply_keys().to_fields()
    forms: list[dict[str, object] | None] = [None, dict(derived), codename_fields(codename, salt)]
    lengths = set()
    for conversation in forms:
        spec: dict[str, object] = {"message": message, "language": "ru", "day": "2026-03-14",
                                   "files": []}  # fmt: skip
        if conversation is not None:
            spec["conversation"] = conversation
        from_js = build_with_node(spec, tmp_path)
        from_python = build_archive(
            message, language="ru", sealed_by="browser", day="2026-03-14",
            conversation=conversation,
        )  # fmt: skip
        assert from_js == from_python
        lengths.add(len(from_python))
    assert len(lengths) == 1, lengths
