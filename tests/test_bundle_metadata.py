"""Bundle decrypt names what each new file gives away; --scrub writes cleaned copies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import parse_recipient
from relay.manifest import SubmissionInfo, write_manifest
from tests import support_metadata as fixtures
from tests.support_process import run
from tests.support_reviewer import TIPRELAY

DAY = "2026-03-04"


def _bundle_with_revealing_files(tmp_path: Path) -> tuple[Path, Path, SubmissionInfo]:
    identity = tmp_path / "reviewer.identity"
    made = run([TIPRELAY, "keygen", "-o", identity, "--no-passphrase"], capture_output=True,
               text=True, check=True)
    recipient = parse_recipient(made.stdout.strip())
    plaintext = build_archive(
        "see attached",
        [("photo.jpg", fixtures.jpeg_with_gps_and_serial()),
         ("report.docx", fixtures.docx_with_author())],
        day=DAY, sealed_by="browser",
    )
    ciphertext = encrypt_bytes(plaintext, [recipient])
    info = SubmissionInfo("b" * 32, DAY, len(ciphertext), hashlib.sha256(ciphertext).hexdigest(),
                          "browser")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / info.file_name).write_bytes(ciphertext)
    write_manifest(bundle, [info])
    return bundle, identity, info


@pytest.mark.slow
def test_decrypt_lists_identifying_metadata_and_scrub_writes_clean_copies(tmp_path: Path) -> None:
    bundle, identity, info = _bundle_with_revealing_files(tmp_path)
    out = tmp_path / "cases"

    result = run([TIPRELAY, "decrypt", "-i", identity, bundle, "-o", out, "--scrub"],
                 capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"METADATA: {info.id} photo.jpg carries: device, place, times " \
           "(tiprelay scrub makes copies without it)" in lines
    assert any(line.startswith(f"METADATA: {info.id} report.docx carries: ") and "people" in line
               for line in lines), lines
    # The summary names kinds, never the values it found.
    assert not [secret for secret in fixtures.SECRETS if secret in result.stdout]
    folder = out / f"{DAY}-{info.id}"
    scrubbed = out / "scrubbed" / folder.name
    record = json.loads((scrubbed / "SCRUBBED.json").read_text())
    assert record["all_cleaned"] is True
    assert [entry["path"] for entry in record["left_out"]] == ["submission.json"]
    assert not (scrubbed / "submission.json").exists()
    for name in ("files/photo.jpg", "files/report.docx"):
        copy = (scrubbed / name).read_bytes()
        assert (folder / name).read_bytes() != copy
        assert fixtures.CAMERA_SERIAL.encode() not in copy
    assert fixtures.CAMERA_SERIAL.encode() in (folder / "files/photo.jpg").read_bytes()


def test_decrypt_without_mat2_says_metadata_was_not_checked(tmp_path: Path) -> None:
    bundle, identity, info = _bundle_with_revealing_files(tmp_path)
    result = run([TIPRELAY, "decrypt", "-i", identity, bundle, "-o", tmp_path / "cases"],
                 capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    assert f"NOTE: {info.id}: identifying metadata not checked: mat2 is not installed" \
        in result.stdout
