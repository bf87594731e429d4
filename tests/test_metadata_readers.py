"""The page's own metadata readers (relay/web/js/metadata) on damaged and hostile files, in Node.

Every fixture of tests/support_metadata.py, cut short at many points and with
its length fields and random bytes overwritten: each reader either reads the
file or says it cannot ("unreadable"), never crashes, within a bounded time;
and whatever it strips keeps the JPEG's coded picture data and the PNG's image
chunks byte for byte.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from pathlib import Path

from tests import support_metadata as fixtures
from tests.support_node import NODE
from tests.support_process import run

HELPER = Path(__file__).resolve().parent / "js" / "metadata_hostile.mjs"
MUTANTS_PER_FIXTURE = 60


def _mutants(name: str, data: bytes, rng: random.Random) -> dict[str, bytes]:
    stem, extension = name.rsplit(".", 1)
    out = {name: data}
    for number in range(MUTANTS_PER_FIXTURE):
        mutant = bytearray(data)
        choice = number % 3
        if choice == 0:
            del mutant[rng.randrange(1, len(mutant)) :]
        elif choice == 1:
            for _ in range(rng.randint(1, 8)):
                mutant[rng.randrange(len(mutant))] = rng.randrange(256)
        else:  # a length field claims the most it can
            at = rng.randrange(2, max(3, len(mutant) - 4))
            mutant[at : at + 4] = struct.pack(">I", 0xFFFFFFFF)
        out[f"{stem}-{number:03}.{extension}"] = bytes(mutant)
    return out


def test_hostile_files_are_read_or_refused_never_crash_and_stay_bounded(tmp_path: Path) -> None:
    rng = random.Random(12)
    made = {
        "photo.jpg": fixtures.jpeg_with_gps_and_serial(),
        "thumb.jpg": fixtures.jpeg_with_jfif_thumbnail(),
        "huge.jpg": fixtures.jpeg_with_huge_declared_exif(),
        "shot.png": fixtures.png_with_text_chunks(),
        "report.docx": fixtures.docx_with_author(),
        "bomb.docx": fixtures.docx_with_bomb_in_its_properties(16 << 20),
        "paper.pdf": fixtures.pdf_with_author(),
    }
    files: dict[str, bytes] = {}
    for name, data in made.items():
        files.update(_mutants(name, data, rng) if name != "bomb.docx" else {name: data})
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    result = run([NODE, HELPER, tmp_path], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    results = {entry["name"]: entry for entry in map(json.loads, result.stdout.splitlines())}

    assert sorted(results) == sorted(files)
    crashes = {name: entry["outcome"] for name, entry in results.items()
               if entry["outcome"] not in ("read", "unreadable")}
    assert crashes == {}
    slow = {name: round(entry["ms"]) for name, entry in results.items() if entry["ms"] > 1000}
    assert slow == {}
    assert results["bomb.docx"]["outcome"] == "unreadable"
    originals = {name: results[name] for name in made}
    assert originals["photo.jpg"]["outcome"] == "read"
    assert originals["report.docx"]["fields"]["Company"] == fixtures.COMPANY
    assert originals["paper.pdf"]["fields"]["Author"] == fixtures.AUTHOR
    assert originals["shot.png"]["fields"]["Author"] == fixtures.AUTHOR
    # JFIF's own thumbnail is cut out; the density it states stays.
    assert originals["thumb.jpg"]["dropped"] == 1
    stripped_thumb = base64.b64decode(originals["thumb.jpg"]["stripped"])
    assert b"\xff\xe0\x00\x10JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00" in stripped_thumb
    assert bytes([200, 10, 10] * 4) not in stripped_thumb
    for name, entry in results.items():
        if entry["outcome"] != "read" or "stripped" not in entry:
            continue
        stripped = base64.b64decode(entry["stripped"])
        if name.endswith(".jpg"):
            assert fixtures.jpeg_picture_data(stripped) == fixtures.jpeg_picture_data(files[name])
            assert fixtures.CAMERA_SERIAL.encode() not in stripped
        else:
            kept = [t for t in fixtures.png_chunk_types(files[name]) if t not in
                    ("tEXt", "iTXt", "zTXt", "eXIf", "tIME")]
            assert fixtures.png_chunk_types(stripped) == kept
            assert fixtures.AUTHOR.encode() not in stripped
