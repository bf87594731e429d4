"""Hostile submissions in a bundle: refused with a message, nothing written outside OUT_DIR.

Anyone holding the public keys can encrypt a submission, so the archive inside
may be crafted. Each case here is a real tar (Python's tarfile, as an attacker
would use), encrypted to the reviewer with relay.crypto.encrypt, placed in a
bundle with a correct manifest, and read with the real ``tiprelay decrypt``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import X25519Recipient
from relay.manifest import SubmissionInfo, write_manifest
from tests.support_reviewer import TIPRELAY, recipient_of
from tests.support_server import generate_identity

DAY = "2026-01-02"
META = json.dumps(
    {"day": DAY, "format_version": 1, "language": "ru", "sealed_by": "browser"}
).encode()


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _tar(build: Callable[[tarfile.TarFile], None]) -> bytes:
    """message.txt, then the hostile part, then submission.json: a tar otherwise valid."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add_file(archive, "message.txt", b"hello")
        build(archive)
        _add_file(archive, "submission.json", META)
    return buffer.getvalue()


def _dot_dot(archive: tarfile.TarFile) -> None:
    _add_file(archive, "files/../../escaped-by-dotdot.txt", b"pwned")


def _absolute(archive: tarfile.TarFile) -> None:
    _add_file(archive, os.environ["HOSTILE_ABSOLUTE_TARGET"], b"pwned")


def _symlink(archive: tarfile.TarFile) -> None:
    link = tarfile.TarInfo("files/innocent.txt")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../escaped-by-symlink.txt"
    archive.addfile(link)
    _add_file(archive, "files/innocent.txt", b"written through the link")


def _hard_link(archive: tarfile.TarFile) -> None:
    link = tarfile.TarInfo("files/passwd")
    link.type = tarfile.LNKTYPE
    link.linkname = "/etc/passwd"
    archive.addfile(link)


def _many_entries(archive: tarfile.TarFile) -> None:
    empty = io.BytesIO(b"")
    for number in range(100_000):
        info = tarfile.TarInfo(f"files/f{number:06d}")
        archive.addfile(info, empty)


HOSTILE: dict[str, tuple[Callable[[tarfile.TarFile], None], str]] = {
    "dot-dot path": (_dot_dot, "'..'"),
    "absolute path": (_absolute, "absolute path"),
    "symlink": (_symlink, "symbolic link"),
    "hard link": (_hard_link, "hard link"),
    "100k entries": (_many_entries, "entries"),
}


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.mark.slow
def test_hostile_submissions_are_refused_and_write_nothing_outside_out_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute_target = tmp_path / "absolute-target" / "pwned.txt"
    monkeypatch.setenv("HOSTILE_ABSOLUTE_TARGET", str(absolute_target))
    identity = tmp_path / "identity.txt"
    generate_identity(identity)
    recipient = X25519Recipient.parse(recipient_of(identity))

    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    plaintexts = {name: _tar(build) for name, (build, _) in HOSTILE.items()}
    plaintexts["a good one"] = build_archive("a good one", [("ok.txt", b"fine")], day=DAY)
    ids: dict[str, str] = {}
    entries = []
    for number, (name, plaintext) in enumerate(plaintexts.items()):
        submission_id = f"{number:032x}"
        ids[name] = submission_id
        ciphertext = encrypt_bytes(plaintext, [recipient])
        (bundle_dir / f"{submission_id}.age").write_bytes(ciphertext)
        entries.append(SubmissionInfo(submission_id, DAY, len(ciphertext),
                                      hashlib.sha256(ciphertext).hexdigest(), "browser"))
    write_manifest(bundle_dir, entries)

    # OUT_DIR is nested so that "../" and "../../" both land inside tmp_path.
    out_dir = tmp_path / "reader" / "out"
    before = _tree(tmp_path)
    result = subprocess.run(
        [TIPRELAY, "decrypt", "-i", str(identity), str(bundle_dir), "-o", str(out_dir)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 1, result.stdout + result.stderr

    after = _tree(tmp_path)
    outside = {path for path in after - before if not path.startswith("reader/out")}
    assert outside == {"reader"}, outside
    assert not absolute_target.exists()
    assert [p.name for p in out_dir.iterdir()] == [f"{DAY}-{ids['a good one']}"]

    lines = result.stdout.splitlines()
    for name, (_, reason) in HOSTILE.items():
        (warning,) = [line for line in lines if line.startswith(f"WARNING: {ids[name]}")]
        assert "refused" in warning and reason in warning, (name, warning)
        assert "Nothing was written for it" in warning
    assert "1 of 6 submission(s) readable" in result.stdout
