"""relay.manifest and relay.bundle without a server: malformed manifests, foreign keys, gaps."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from relay.bundle import (
    ALREADY_DECRYPTED,
    DECRYPTED,
    MISSING,
    NOT_FOR_IDENTITY,
    decrypt_bundle,
    summary_lines,
)
from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.files import NotARegularFileError, open_regular_file
from relay.manifest import (
    BUNDLE_FORMAT,
    MANIFEST_NAME,
    ManifestError,
    SubmissionInfo,
    read_manifest,
    write_manifest,
)
from tests.support_process import run
from tests.support_reviewer import TIPRELAY

DAY = "2026-03-04"
GOOD_ENTRY = {"id": "a" * 32, "day": DAY, "size": 1, "sha256": "0" * 64, "sealed_by": "browser"}


def _write_submission(
    bundle: Path, number: int, identity: X25519Identity, text: str
) -> SubmissionInfo:
    ciphertext = encrypt_bytes(build_archive(text, day=DAY, sealed_by="browser"),
                               [identity.recipient])
    info = SubmissionInfo(f"{number:032x}", DAY, len(ciphertext),
                          hashlib.sha256(ciphertext).hexdigest(), "browser")
    (bundle / info.file_name).write_bytes(ciphertext)
    return info


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"format": "other", "submissions": []}).encode(), "not a tiprelay bundle"),
        (json.dumps({"format": BUNDLE_FORMAT, "submissions": {}}).encode(), "no list"),
        (json.dumps({"format": BUNDLE_FORMAT, "submissions": [{**GOOD_ENTRY, "id": "../../x"}]})
         .encode(), "no valid id"),
        (json.dumps({"format": BUNDLE_FORMAT, "submissions": [{**GOOD_ENTRY, "day": "../.."}]})
         .encode(), "no valid day"),
        (json.dumps({"format": BUNDLE_FORMAT, "submissions": [{**GOOD_ENTRY, "size": -1}]})
         .encode(), "no valid size"),
        (json.dumps({"format": BUNDLE_FORMAT, "submissions": [{**GOOD_ENTRY, "sealed_by": "x"}]})
         .encode(), "no valid sealed_by"),
    ],
    ids=["json", "format", "list", "id", "day", "size", "sealed_by"],
)
def test_malformed_manifests_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path)


def test_manifest_round_trips_sorted_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    entries = [SubmissionInfo(**{**GOOD_ENTRY, "id": c * 32}) for c in "cab"]  # type: ignore[arg-type]
    write_manifest(tmp_path, entries)
    assert list(read_manifest(tmp_path)) == ["a" * 32, "b" * 32, "c" * 32]
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_bundle_reports_foreign_missing_and_unlisted_files_and_decrypts_the_rest(
    tmp_path: Path,
) -> None:
    mine, theirs = X25519Identity.generate(), X25519Identity.generate()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    readable = _write_submission(bundle, 1, mine, "for me")
    foreign = _write_submission(bundle, 2, theirs, "for someone else")
    gone = _write_submission(bundle, 3, mine, "lost on the way")
    (bundle / gone.file_name).unlink()
    _write_submission(bundle, 4, mine, "not in the manifest")
    write_manifest(bundle, [readable, foreign, gone])

    report = decrypt_bundle(bundle, tmp_path / "out", [mine])
    statuses = {outcome.info.id: outcome.status for outcome in report.outcomes}
    assert statuses == {readable.id: DECRYPTED, foreign.id: NOT_FOR_IDENTITY, gone.id: MISSING}
    assert report.unlisted_files == [f"{4:032x}.age"]
    assert not report.all_readable
    lines = summary_lines(report)
    assert any(foreign.id in line and "not encrypted to this identity" in line for line in lines)
    assert any("not listed in manifest.json" in line for line in lines)
    assert (tmp_path / "out" / f"{DAY}-{readable.id}" / "message.txt").read_text() == "for me"

    again = decrypt_bundle(bundle, tmp_path / "out", [mine])
    assert again.outcomes[0].status == ALREADY_DECRYPTED


def test_decrypt_of_a_folder_without_manifest_says_what_it_expects(tmp_path: Path) -> None:
    identity = tmp_path / "identity.txt"
    identity.write_text(str(X25519Identity.generate()) + "\n")
    (tmp_path / "not-a-bundle").mkdir()
    result = subprocess.run(
        [TIPRELAY, "decrypt", "-i", str(identity), str(tmp_path / "not-a-bundle"),
         "-o", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "no manifest.json" in result.stderr and "tiprelay pull" in result.stderr


def test_offline_decrypt_code_never_loads_aiohttp() -> None:
    import sys

    code = (
        "import sys, relay.bundle, relay.cli.crypt, relay.manifest; "
        "assert 'aiohttp' not in sys.modules, 'aiohttp was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_damage_is_told_apart_from_a_foreign_key_and_from_damage_on_the_relay(
    tmp_path: Path,
) -> None:
    identity = X25519Identity.generate()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    in_transit = _write_submission(bundle, 1, identity, "stanza hit on the way")
    path = bundle / in_transit.file_name
    data = bytearray(path.read_bytes())
    spot = data.index(b"-> X25519 ") + 12
    data[spot] = ord("A") if data[spot] != ord("A") else ord("B")
    path.write_bytes(bytes(data))

    on_relay = _write_submission(bundle, 2, identity, "damaged before the pull")
    path = bundle / on_relay.file_name
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    on_relay = SubmissionInfo(on_relay.id, DAY, len(data), hashlib.sha256(data).hexdigest(),
                              "browser")  # the relay listed the damaged file
    write_manifest(bundle, [in_transit, on_relay])

    outcomes = {o.info.id: o for o in decrypt_bundle(bundle, tmp_path / "out", [identity]).outcomes}
    assert outcomes[in_transit.id].status == "damaged"
    assert "does not match its SHA-256" in outcomes[in_transit.id].detail
    assert outcomes[on_relay.id].status == "damaged"
    assert "already like this on the relay" in outcomes[on_relay.id].detail
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_fifo_or_link_in_place_of_an_age_file_is_refused_and_the_rest_decrypts(
    tmp_path: Path,
) -> None:
    identity = X25519Identity.generate()
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(str(identity) + "\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    fifo = _write_submission(bundle, 1, identity, "a pipe now")
    linked = _write_submission(bundle, 2, identity, "a link now")
    readable = _write_submission(bundle, 3, identity, "still readable")
    (bundle / fifo.file_name).unlink()
    os.mkfifo(bundle / fifo.file_name)
    (bundle / linked.file_name).rename(tmp_path / "elsewhere.age")
    (bundle / linked.file_name).symlink_to(tmp_path / "elsewhere.age")
    write_manifest(bundle, [fifo, linked, readable])

    result = run([TIPRELAY, "decrypt", "-i", identity_file, bundle, "-o", tmp_path / "out"],
                 capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"WARNING: {fifo.id} refused: {fifo.file_name} is a named pipe (FIFO)" in result.stdout
    assert f"WARNING: {linked.id} refused: {linked.file_name} is a symbolic link" in result.stdout
    assert "1 of 3 submission(s) readable" in result.stdout
    (folder,) = (tmp_path / "out").iterdir()
    assert (folder / "message.txt").read_text() == "still readable"


def test_open_regular_file_refuses_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "plain").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    with open_regular_file(tmp_path / "plain") as handle:
        assert handle.read() == b"data"
    for name, kind in (("pipe", "FIFO"), ("link", "symbolic link")):
        with pytest.raises(NotARegularFileError, match=kind):
            open_regular_file(tmp_path / name)
    with pytest.raises(NotARegularFileError, match="character device"):
        open_regular_file(Path("/dev/zero"))
