"""`tiprelay scrub`: cleaned copies by mat2, checked with exiftool; originals untouched."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from tests import support_metadata as fixtures
from tests.support_process import run
from tests.support_reviewer import TIPRELAY

GPS_AND_PEOPLE_TAGS = ("GPS", "Make", "Model", "SerialNumber", "Author", "Creator",
                       "LastModifiedBy", "Company")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exiftool(path: Path) -> str:
    """Everything exiftool (an independent reader) finds in the file, as JSON text."""
    result = run(["exiftool", "-j", "-a", "-G1", "-u", str(path)], capture_output=True, timeout=60)
    return result.stdout.decode("utf-8", "replace")


def _everything_readable(path: Path) -> str:
    """exiftool's view, the raw bytes, and for zip-based files every entry unpacked."""
    parts = [_exiftool(path), path.read_bytes().decode("latin-1")]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            parts += [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
    return "\n".join(parts)


def _scrub(source: Path, out: Path, *extra: str) -> tuple[int, str, dict]:
    result = run([TIPRELAY, "scrub", source, "-o", out, *extra], capture_output=True, text=True,
                 timeout=300)
    record_path = out / "SCRUBBED.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    return result.returncode, result.stdout + result.stderr, record


@pytest.mark.slow
def test_scrub_removes_gps_serial_and_authors_and_leaves_the_originals(tmp_path: Path) -> None:
    source = tmp_path / "decrypted"
    (source / "files").mkdir(parents=True)
    made = {
        "files/photo.jpg": fixtures.jpeg_with_gps_and_serial(),
        "files/shot.png": fixtures.png_with_text_chunks(),
        "files/report.docx": fixtures.docx_with_author(),
        "files/paper.pdf": fixtures.pdf_with_author(),
        "message.txt": b"Meet me at noon.\n",
    }
    for name, data in made.items():
        (source / name).write_bytes(data)
    before = {name: _sha256(source / name) for name in made}
    # The fixtures do carry what must go, as exiftool reads them.
    assert fixtures.CAMERA_SERIAL in _exiftool(source / "files/photo.jpg")
    assert "GPSLatitude" in _exiftool(source / "files/photo.jpg")
    for name in ("files/shot.png", "files/report.docx", "files/paper.pdf"):
        assert fixtures.AUTHOR in _everything_readable(source / name), name

    out = tmp_path / "to-share"
    status, output, record = _scrub(source, out)

    assert status == 0, output
    assert {name: _sha256(source / name) for name in made} == before
    assert record["all_cleaned"] is True
    by_path = {entry["path"]: entry for entry in record["files"]}
    assert sorted(by_path) == sorted(made)
    for name in made:
        entry = by_path[name]
        copy = out / name
        assert entry["status"] == "cleaned"
        assert entry["original_sha256"] == before[name]
        assert entry["copy_sha256"] == _sha256(copy)
        seen = _everything_readable(copy)
        for secret in fixtures.SECRETS:
            assert secret not in seen, (name, secret)
        tags = json.loads(_exiftool(copy))[0]
        leftovers = [tag for tag in tags if any(word in tag for word in GPS_AND_PEOPLE_TAGS)]
        assert leftovers == [], (name, leftovers)
    assert {"place", "device", "times"} <= set(by_path["files/photo.jpg"]["removed_kinds"])
    for name in ("files/shot.png", "files/report.docx", "files/paper.pdf"):
        assert "people" in by_path[name]["removed_kinds"], name
    assert {"cp:lastModifiedBy", "dc:creator", "Company"} <= set(
        by_path["files/report.docx"]["removed"])
    assert "notes" in by_path["files/shot.png"]["removed_kinds"]  # its Comment chunk
    # The record names fields, never their values: it travels with the copies.
    text = (out / "SCRUBBED.json").read_text()
    assert not [secret for secret in fixtures.SECRETS if secret in text]
    assert "5 of 5 file(s) cleaned" in output


def test_files_mat2_cannot_clean_are_reported_loudly_with_no_copy(tmp_path: Path) -> None:
    source = tmp_path / "hostile"
    source.mkdir()
    (source / "cut.jpg").write_bytes(fixtures.truncated_jpeg())
    (source / "bomb.docx").write_bytes(fixtures.zip_bomb_docx(64 << 20))
    (source / "data.bin").write_bytes(os.urandom(4096))
    (source / "huge-exif.jpg").write_bytes(fixtures.jpeg_with_huge_declared_exif())
    out = tmp_path / "out"

    started = time.monotonic()
    status, output, record = _scrub(source, out, "--max-unpacked-total", str(16 << 20),
                                    "--timeout", "30")
    elapsed = time.monotonic() - started

    assert status == 1
    assert elapsed < 60
    by_path = {entry["path"]: entry for entry in record["files"]}
    assert record["all_cleaned"] is False
    for name in ("cut.jpg", "bomb.docx", "data.bin"):
        assert by_path[name]["status"] == "NOT CLEANED", name
        assert by_path[name]["copy_sha256"] is None
        assert not (out / name).exists()
        assert f"NOT CLEANED  {name}" in output
    assert "would unpack to more than" in by_path["bomb.docx"]["problem"]
    assert "does not support" in by_path["data.bin"]["problem"]
    # The lying EXIF is either refused or really gone: never a copy that still has it.
    huge = by_path["huge-exif.jpg"]
    if huge["status"] == "cleaned":
        assert "Make" not in json.loads(_exiftool(out / "huge-exif.jpg"))[0]
    else:
        assert not (out / "huge-exif.jpg").exists()
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["SCRUBBED.json"] + [name for name, entry in by_path.items() if entry["copy_sha256"]]
    )


def test_scrub_without_mat2_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(fixtures.png_with_text_chunks())
    result = run([TIPRELAY, "scrub", tmp_path / "a.png", "-o", tmp_path / "out"],
                 capture_output=True, text=True, env={**os.environ, "PATH": "/nonexistent"})
    assert result.returncode == 1
    assert "mat2 is not installed" in result.stderr
    assert "apt-get install mat2" in result.stderr
    assert not (tmp_path / "out").exists()


def test_scrub_refuses_an_output_folder_inside_its_input(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(fixtures.png_with_text_chunks())
    result = run([TIPRELAY, "scrub", tmp_path, "-o", tmp_path / "inside"],
                 capture_output=True, text=True)
    assert result.returncode == 1
    assert "overlap" in result.stderr
