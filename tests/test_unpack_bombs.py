"""Archive bombs on the reviewer's machine: measured before mat2, one private folder, one limit.

The bombs are those of fuzz/bombs.py (a few KB each, made by code). What is
checked: ``measure_unpacked`` counts what mat2 would unpack (tar in every
compression, zip, nested) and stops at the limit; ``Workspace.run`` stops a
real ``tar`` that writes past the budget, spread over many files or in one;
``tiprelay decrypt`` and ``tiprelay scrub`` (real processes, real mat2) leave
nothing in TMPDIR or in OUT's private folder after success, failure, SIGINT
and SIGTERM, hold one limit over all attachments, mark what they did not
inspect, and still decrypt it as sent.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fuzz import bombs
from relay.unpacking import MAX_DEPTH, Unpacked, measure_unpacked
from relay.workspace import DEFAULT_TOTAL, WORK_PREFIX, Workspace, remove_stale_workspaces
from tests import support_metadata as fixtures
from tests.support_process import run, spawned
from tests.support_reviewer import TIPRELAY

MiB = 1 << 20


def _measure(tmp_path: Path, name: str, data: bytes, limit: int) -> tuple[Unpacked, float]:
    path = tmp_path / name
    path.write_bytes(data)
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    started = time.monotonic()
    result = measure_unpacked(path, limit, spool)
    elapsed = time.monotonic() - started
    assert list(spool.iterdir()) == []
    return result, elapsed


# --- measure_unpacked ------------------------------------------------------------------

EXACT: dict[str, tuple[Callable[[], bytes], int | None]] = {
    # name: (data, what mat2 unpacks it to: members, nested members again, tar headers)
    "one.tar.bz2": (lambda: bombs.tar_bz2_bomb(8 * MiB), 8 * MiB + 3 * 512),
    "many.tar.bz2": (lambda: bombs.tar_bz2_files(4, 2 * MiB), 8 * MiB + 6 * 512),
    "tar-in-tar.tar": (lambda: bombs.tar_of_bombs(3, 2 * MiB), None),
    "tar-in-tar.tar.gz": (lambda: bombs.tar_of_bombs(3, 2 * MiB, "gz"), None),
    "tar-in-tar.tar.bz2": (lambda: bombs.tar_of_bombs(3, 2 * MiB, "bz2"), None),
    "tar-in-tar.tar.xz": (lambda: bombs.tar_of_bombs(3, 2 * MiB, "xz"), None),
    "zip-in-zip.zip": (lambda: bombs.zip_of_zips(3, 2 * MiB), None),
    "bomb.docx": (lambda: bombs.office_bomb("docx", 3, 2 * MiB), None),
    "bomb.odt": (lambda: bombs.office_bomb("odt", 3, 2 * MiB), None),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_every_kind_of_archive_is_counted_with_what_it_holds_inside(
    tmp_path: Path, name: str
) -> None:
    make, exact = EXACT[name]
    data = make()
    result, _ = _measure(tmp_path, name, data, 1 << 40)
    assert result.problem == "" and not result.over_limit
    size = result.size
    if exact is not None:
        assert size == exact
    # Every nested archive's zeros are counted: three members of 2 MiB each, at least.
    assert size >= 6 * MiB if "in" in name or "bomb" in name else size >= 8 * MiB
    assert len(data) < 20_000


@pytest.mark.parametrize("name", sorted(EXACT))
def test_counting_stops_at_the_limit(tmp_path: Path, name: str) -> None:
    make, _ = EXACT[name]
    result, elapsed = _measure(tmp_path, name, make(), 3 * MiB)
    assert result.over_limit
    assert result.size <= 4 * MiB
    assert elapsed < 10


def test_the_default_limit_stops_a_5_gib_bomb_at_its_first_header(tmp_path: Path) -> None:
    data = bombs.tar_bz2_bomb(5 << 30)
    assert len(data) < 10_000
    result, elapsed = _measure(tmp_path, "evidence.tar", data, DEFAULT_TOTAL)
    assert result.over_limit
    assert elapsed < 5


def test_a_zip_entry_with_an_empty_name_is_counted_not_a_crash(tmp_path: Path) -> None:
    """Found by the fuzzer: zipfile's is_dir() fails on an entry named ""."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr(zipfile.ZipInfo(""), b"hidden" * 1000)
        archive.writestr("a.txt", b"x" * 10)
    result, _ = _measure(tmp_path, "evidence.zip", data.getvalue(), 1 << 20)
    assert result.problem == "" and result.size == 6010


def test_a_tar_ending_with_a_zip_is_counted_as_the_tar_mat2_unpacks(tmp_path: Path) -> None:
    # Its last member's zip directory is near the end: it passes for a zip as well.
    tar = bombs.plain_tar([("bomb.tar.bz2", bombs.tar_bz2_bomb(64 * MiB)),
                           ("report.docx", fixtures.docx_with_author())])
    result, _ = _measure(tmp_path, "evidence.tar", tar, 1 << 40)
    assert result.size > 64 * MiB and result.problem == ""
    over, _ = _measure(tmp_path, "evidence.tar", tar, 32 * MiB)
    assert over.over_limit


def test_a_tar_ending_with_a_damaged_zip_is_read_as_the_tar_it_is(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # stored: its bytes are in the tar as they are
        archive.writestr("a.txt", b"A" * 1000)
    damaged = bytearray(b"JUNK" + out.getvalue())
    damaged[damaged.index(b"A" * 1000) + 10] ^= 1  # its CRC no longer matches
    tar = bombs.plain_tar([("notes.txt", b"hello"), ("blob.bin", bytes(damaged))])
    result, _ = _measure(tmp_path, "documents.tar", tar, 1 << 30)
    assert result.problem == "" and result.size >= len(damaged) + 5


# Raw bytes in names: tarfile writes them back with surrogateescape (xz's NUL: the padding).
@pytest.mark.parametrize("name", ["BZh91AY&SY", "\x1f\udc8b\x08", "\udcfd7zXZ"],
                         ids=["bzip2", "gzip", "xz"])
def test_a_plain_tar_whose_first_name_looks_compressed_is_still_counted(
    tmp_path: Path, name: str
) -> None:
    # tarfile (and so mat2) reads it as the plain tar it also is.
    tar = bombs.plain_tar([(name, b"x"), ("bomb.tar.bz2", bombs.tar_bz2_bomb(64 * MiB))])
    result, _ = _measure(tmp_path, "evidence.tar", tar, 1 << 40)
    assert result.size > 64 * MiB and result.problem == ""


def test_what_is_no_archive_counts_nothing(tmp_path: Path) -> None:
    for name, data in (("photo.jpg", fixtures.jpeg_with_gps_and_serial()),
                       ("random.bin", os.urandom(5000)), ("notes.gz", b"\x1f\x8bnot really")):
        result, _ = _measure(tmp_path, name, data, 1 << 30)
        assert (result.size, result.problem) == (0, ""), name


def _nested_tar(depth: int) -> bytes:
    data = b"deep"
    for level in range(depth):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as archive:
            info = tarfile.TarInfo(f"level-{level}.tar")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        data = out.getvalue()
    return data


def test_hostile_structures_are_problems_not_crashes(tmp_path: Path) -> None:
    fine, _ = _measure(tmp_path, "deep.tar", _nested_tar(MAX_DEPTH), 1 << 30)
    assert fine.problem == ""
    deep, _ = _measure(tmp_path, "deeper.tar", _nested_tar(MAX_DEPTH + 1), 1 << 30)
    assert "nested more than" in deep.problem

    pax = io.BytesIO()
    with tarfile.open(fileobj=pax, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a")
        info.pax_headers = {"comment": "x" * (2 * MiB)}
        archive.addfile(info, io.BytesIO(b""))
    header, _ = _measure(tmp_path, "pax.tar", pax.getvalue(), 1 << 30)
    assert "extension header" in header.problem

    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for number in range(20_001):
            archive.writestr(f"{number}", b"")
    crowded, _ = _measure(tmp_path, "many.zip", many.getvalue(), 1 << 30)
    assert "more than 20000" in crowded.problem

    cut = bombs.tar_of_bombs(2, MiB, "gz")[:-40]
    broken, _ = _measure(tmp_path, "cut.tar.gz", cut, 1 << 30)
    assert "cannot be read" in broken.problem


def _files_under(folder: Path) -> dict[str, int]:
    sizes = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                sizes[path] = os.lstat(path).st_size
    return sizes


# --- Workspace ---------------------------------------------------------------------------


class _Peak:
    """The most bytes seen under ``folder`` while the block runs, sampled every 5 ms."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.bytes = max(self.bytes, sum(_files_under(self.folder).values()))
            time.sleep(0.005)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("spread", [False, True], ids=["one-file", "many-files"])
def test_a_real_tar_writing_past_the_budget_is_stopped(tmp_path: Path, spread: bool) -> None:
    archive = tmp_path / "bomb.tar.bz2"
    archive.write_bytes(bombs.tar_bz2_files(16, 32 * MiB) if spread
                        else bombs.tar_bz2_bomb(512 * MiB))
    out = tmp_path / "out"
    budget = 96 * MiB
    with Workspace(out, budget) as workspace, _Peak(workspace.folder) as peak:
        started = time.monotonic()
        result = workspace.run(["tar", "-xjf", str(archive)], workspace.tmp, estimate=0,
                               timeout_seconds=60, memory_bytes=1 << 30)
        elapsed = time.monotonic() - started
        assert "it would write more than" in result.problem
        assert workspace.remaining == 0
        assert list(workspace.tmp.iterdir()) == []  # what it wrote is gone at once
    assert elapsed < 30
    # 512 MiB would have been written; the budget, and a little the watchdog may miss.
    assert peak.bytes < budget + 160 * MiB
    assert result.written >= budget if spread else result.written <= budget
    assert list(out.iterdir()) == []


def test_a_python_writer_past_the_budget_is_reported_as_over_it(tmp_path: Path) -> None:
    # mat2 is Python, which ignores SIGXFSZ: its write fails instead, at the limit exactly.
    write = "open('zeros', 'wb').write(bytes(256 << 20))"
    with Workspace(tmp_path / "out", 32 * MiB) as workspace:
        result = workspace.run([sys.executable, "-c", write], workspace.tmp, estimate=0,
                               timeout_seconds=60, memory_bytes=2 << 30)
        assert "it would write more than" in result.problem, result
        assert result.written <= 32 * MiB
        assert list(workspace.tmp.iterdir()) == []


def test_a_run_past_its_time_limit_is_stopped_with_its_children(tmp_path: Path) -> None:
    with Workspace(tmp_path / "out", MiB) as workspace:
        started = time.monotonic()
        result = workspace.run(["sh", "-c", "sleep 60 & sleep 60"], workspace.tmp, estimate=0,
                               timeout_seconds=1, memory_bytes=1 << 30)
        elapsed = time.monotonic() - started
    assert result.problem == "it took more than 1 s; stopped"
    assert elapsed < 10
    # Killed, both: a SIGKILLed process may take a moment to be gone on a busy machine.
    deadline = time.monotonic() + 10
    while _processes_working_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_working_in(tmp_path) == []


def test_leftovers_of_a_crashed_run_are_removed_but_not_a_running_ones(tmp_path: Path) -> None:
    crashed = tmp_path / f"{WORK_PREFIX}crashed"
    (crashed / "tmp").mkdir(parents=True)
    (crashed / "lock").write_bytes(b"")
    (crashed / "tmp" / "notes.txt").write_bytes(bombs.SECRET_TEXT)
    running = tmp_path / f"{WORK_PREFIX}running"
    running.mkdir()
    lock = os.open(running / "lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert remove_stale_workspaces(tmp_path) == [crashed]
    finally:
        os.close(lock)
    assert not crashed.exists() and running.exists()


# --- tiprelay decrypt and scrub -------------------------------------------------------------


def _decrypt(tmp_path: Path, bundle: Path, identity: Path, *extra: str) -> tuple[int, str]:
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    result = run([TIPRELAY, "decrypt", "-i", identity, bundle, "-o", tmp_path / "out", *extra],
                 capture_output=True, text=True, env=env, timeout=120)
    return result.returncode, result.stdout + result.stderr


BOMBS: dict[str, Callable[[], bytes]] = {
    "evidence.tar": lambda: bombs.tar_bz2_bomb(256 * MiB),
    "spread.tar.bz2": lambda: bombs.tar_bz2_files(8, 4 * MiB),
    "parts.tar": lambda: bombs.tar_of_bombs(4, 8 * MiB),
    "parts.tar.gz": lambda: bombs.tar_of_bombs(4, 8 * MiB, "gz"),
    "parts.tar.bz2": lambda: bombs.tar_of_bombs(4, 8 * MiB, "bz2"),
    "parts.tar.xz": lambda: bombs.tar_of_bombs(4, 8 * MiB, "xz"),
    "inner.zip": lambda: bombs.zip_of_zips(4, 8 * MiB),
    "report.docx": lambda: bombs.office_bomb("docx", 4, 8 * MiB),
    "report.odt": lambda: bombs.office_bomb("odt", 4, 8 * MiB),
}


@pytest.mark.slow
def test_decrypt_and_scrub_mark_every_bomb_write_nothing_outside_out_and_still_decrypt(
    tmp_path: Path,
) -> None:
    attachments = [(name, make()) for name, make in BOMBS.items()]
    attachments += [("notes.tar", bombs.tar_with_damaged_png()),
                    ("photo.jpg", fixtures.jpeg_with_gps_and_serial())]
    bundle, identity, (tip_id,) = bombs.tip_bundle(tmp_path, [attachments])
    out = tmp_path / "out"
    stale = out / f"{WORK_PREFIX}from-a-crash"
    (stale / "tmp").mkdir(parents=True)
    (stale / "tmp" / "a-notes.txt").write_bytes(bombs.SECRET_TEXT)
    os.utime(stale, (0, 0))

    started = time.monotonic()
    status, output = _decrypt(tmp_path, bundle, identity, "--scrub",
                              "--max-unpacked-total", str(24 * MiB))
    elapsed = time.monotonic() - started

    assert status == 1, output  # not every file could be cleaned
    assert elapsed < 60
    lines = output.splitlines()
    for name in BOMBS:
        line = next(line for line in lines if line.startswith(f"METADATA: {tip_id} {name}:"))
        assert ": NOT INSPECTED: it would unpack to more than" in line, line
        assert "--max-unpacked-total" in line and "as the source sent it" in line
    assert any(line.startswith(f"METADATA: {tip_id} notes.tar: NOT INSPECTED: mat2: it failed")
               for line in lines), lines
    assert f"METADATA: {tip_id} photo.jpg carries: device, place, times " \
           "(tiprelay scrub makes copies without it)" in lines
    # Every attachment is decrypted as it was sent, bombs included.
    files = out / f"2026-03-04-{tip_id}" / "files"
    assert {path.name: path.read_bytes() for path in files.iterdir()} == dict(attachments)
    # --scrub cleaned the photo and the message only; each bomb was refused, same reason.
    scrubbed = out / "scrubbed" / f"2026-03-04-{tip_id}"
    assert sorted(_files_under(scrubbed)) == [
        str(scrubbed / name) for name in ("SCRUBBED.json", "files/photo.jpg", "message.txt")]
    for name in BOMBS:
        assert any(line.startswith(f"WARNING: {tip_id} files/{name} NOT CLEANED: it would unpack")
                   for line in lines), name
    # Nothing anywhere else: not in TMPDIR, not in OUT (the crashed run's folder is gone).
    assert list((tmp_path / "tmp").iterdir()) == []
    assert sorted(path.name for path in out.iterdir()) == [f"2026-03-04-{tip_id}", "scrubbed"]


@pytest.mark.slow
def test_the_limit_holds_in_total_over_attachments_and_tips(tmp_path: Path) -> None:
    part = bombs.tar_bz2_files(6, 4 * MiB)  # 24 MiB and headers: each one fits, not three
    tips = [[("a.tar", part), ("b.tar", part)], [("c.tar", part)]]
    bundle, identity, ids = bombs.tip_bundle(tmp_path, tips)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    with _Peak(tmp_path) as peak:
        status, output = _decrypt(tmp_path, bundle, identity,
                                  "--max-unpacked-total", str(64 * MiB))

    assert status == 0, output
    lines = output.splitlines()
    assert f"METADATA: {ids[0]} a.tar carries: times (tiprelay scrub makes copies without it)" \
        in lines
    assert f"METADATA: {ids[0]} b.tar carries: times (tiprelay scrub makes copies without it)" \
        in lines
    third = next(line for line in lines if line.startswith(f"METADATA: {ids[1]} c.tar"))
    assert "NOT INSPECTED: it would unpack to more than" in third
    assert "what is left of the 64.0 MiB limit" in third
    assert list(tmp.iterdir()) == []
    assert not list(out.glob(".*"))
    # Disk used at any moment, besides what the tips themselves are: within one part.
    sent = sum(size for size in _files_under(tmp_path).values())
    assert peak.bytes - sent < 32 * MiB


def _wait_until_mat2_unpacks(out: Path, process: subprocess.Popen[bytes]) -> None:
    """Until a file over 1 MiB grows in the private folder's TMPDIR (mat2 at work)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        for path in out.glob(f"{WORK_PREFIX}*/tmp/*/*"):
            with contextlib.suppress(OSError):
                if path.stat().st_size > MiB:
                    return
        time.sleep(0.02)
    raise AssertionError("mat2 never started unpacking")


def _processes_working_in(folder: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd").startswith(str(folder)):
                    found.append(entry.name)
    return found


def _start_decrypt(tmp_path: Path) -> tuple[list[str | Path], dict[str, str], Path, Path]:
    bundle, identity, (tip_id,) = bombs.tip_bundle(
        tmp_path, [[("big.tar", bombs.tar_bz2_files(12, 16 * MiB))]])
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    argv: list[str | Path] = [TIPRELAY, "decrypt", "-i", identity, bundle, "-o", out,
                              "--max-unpacked-total", str(2 << 30)]
    return argv, {**os.environ, "TMPDIR": str(tmp)}, out, out / f"2026-03-04-{tip_id}"


@pytest.mark.slow
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_decrypt_stopped_mid_inspection_leaves_nothing(tmp_path: Path, number: int) -> None:
    argv, env, out, tip = _start_decrypt(tmp_path)
    with spawned(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        _wait_until_mat2_unpacks(out, process)
        process.send_signal(number)
        status = process.wait(timeout=30)
        assert process.stdout is not None
        output = process.stdout.read().decode()
    assert status != 0, output
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not list(out.glob(f"{WORK_PREFIX}*")), output
    assert _processes_working_in(out) == []  # mat2 was stopped with it
    assert (tip / "files" / "big.tar").is_file()


@pytest.mark.slow
def test_mat2_dies_with_a_killed_decrypt_and_the_next_run_removes_its_folder(
    tmp_path: Path,
) -> None:
    argv, env, out, tip = _start_decrypt(tmp_path)
    with spawned(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        _wait_until_mat2_unpacks(out, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _processes_working_in(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_working_in(out) == []
    # mat2 was killed mid-way, with its parent: had it lived on, it would have
    # finished and removed its own folder in TMPDIR; nobody removed ours.
    assert list(out.glob(f"{WORK_PREFIX}*/tmp/*"))

    result = run(argv, capture_output=True, text=True, env=env)  # the tip: already decrypted

    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(out.glob(f"{WORK_PREFIX}*"))
    assert list((tmp_path / "tmp").iterdir()) == []
    assert (tip / "files" / "big.tar").is_file()


@pytest.mark.slow
def test_scrub_holds_the_limit_in_total_and_leaves_nothing_outside_out(tmp_path: Path) -> None:
    source = tmp_path / "decrypted"
    source.mkdir()
    (source / "photo.jpg").write_bytes(fixtures.jpeg_with_gps_and_serial())
    (source / "evidence.tar").write_bytes(bombs.tar_bz2_bomb(256 * MiB))
    (source / "inner.zip").write_bytes(bombs.zip_of_zips(4, 16 * MiB))
    (source / "notes.tar").write_bytes(bombs.tar_with_damaged_png())
    (source / "report.docx").write_bytes(fixtures.docx_with_author())
    tmp, out = tmp_path / "tmp", tmp_path / "to-share"
    tmp.mkdir()
    result = run([TIPRELAY, "scrub", source, "-o", out, "--max-unpacked-total", str(32 * MiB)],
                 capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp)})

    assert result.returncode == 1, result.stdout + result.stderr
    record = json.loads((out / "SCRUBBED.json").read_text())
    by_path = {entry["path"]: entry for entry in record["files"]}
    assert by_path["photo.jpg"]["status"] == "cleaned"
    assert by_path["report.docx"]["status"] == "cleaned"
    for name in ("evidence.tar", "inner.zip"):
        assert by_path[name]["status"] == "NOT CLEANED"
        assert "would unpack to more than" in by_path[name]["problem"], by_path[name]
    assert by_path["notes.tar"]["status"] == "NOT CLEANED"
    assert sorted(path.name for path in out.iterdir()) == ["SCRUBBED.json", "photo.jpg",
                                                          "report.docx"]
    assert list(tmp.iterdir()) == []
    # The source's text is nowhere but in the original it came in.
    holding = [path for path in tmp_path.rglob("*")
               if path.is_file() and bombs.SECRET_TEXT in path.read_bytes()]
    assert holding == [source / "notes.tar"]


def test_the_limit_is_an_option_of_both_commands_with_the_documented_default() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "reviewer.md").read_text()
    assert "`--max-unpacked-total`" in docs and "2 GiB" in docs
    for command in ("decrypt", "scrub"):
        result = run([TIPRELAY, command, "--help"], capture_output=True, text=True, check=True)
        text = " ".join(result.stdout.split())
        assert "--max-unpacked-total" in text
        assert f"default: {DEFAULT_TOTAL}" in text


def test_the_reported_bomb_under_the_default_limit_costs_nothing(tmp_path: Path) -> None:
    # 3.8 KB: a tar.bz2 of 2 GiB and 512 bytes of zeros, which left 2 GiB in /tmp.
    evidence = bombs.tar_bz2_bomb((2 << 30) + 512)
    bundle, identity, (tip_id,) = bombs.tip_bundle(tmp_path, [[("evidence.tar", evidence)]])
    started = time.monotonic()
    status, output = _decrypt(tmp_path, bundle, identity)
    elapsed = time.monotonic() - started
    assert status == 0, output
    assert f"METADATA: {tip_id} evidence.tar: NOT INSPECTED: it would unpack to more than the " \
           "2.0 GiB limit on what inspection may unpack in one run (--max-unpacked-total)" \
           in output
    assert elapsed < 30
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not list((tmp_path / "out").glob(".*"))


def test_input_that_unpacks_to_nothing_is_still_stopped_at_the_time_limit(
    tmp_path: Path,
) -> None:
    """Found in review: a long run of empty gzip members makes gzip read on and on
    without handing out a byte, so the deadline is checked as input is read too."""
    empty_member = gzip.compress(b"", mtime=0)
    data = empty_member * 2_000_000  # about 40 MB, nothing inside
    path = tmp_path / "nothing.tar.gz"
    path.write_bytes(data)
    spool = tmp_path / "spool"
    spool.mkdir()
    started = time.monotonic()
    result = measure_unpacked(path, 1 << 30, spool, timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert "took too long" in result.problem
    assert elapsed < 10
