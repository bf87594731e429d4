"""Archive bombs against `tiprelay decrypt BUNDLE` (and `--scrub`): disk written, time, leftovers.

For each bomb of fuzz/bombs.py, sent as one tip, runs a real `tiprelay decrypt`
with TMPDIR set to a fresh folder, and prints: the bytes it and its children
(mat2) wrote to disk (the kernel's count of pages they dirtied, getrusage's
ru_oublock, so files deleted since count too), the peak of what TMPDIR and OUT
held, sampled every 10 ms (less the decrypted tip itself: what the source
sent), the time, and what is left in TMPDIR and in OUT's private folders.

    .venv/bin/python bench/bombs.py                      # this checkout, default limit
    .venv/bin/python bench/bombs.py --scrub --cap 268435456
    .venv/bin/python bench/bombs.py --code /tmp/old      # an older relay/ (git archive)

``--code DIR`` runs the relay package found in DIR (e.g. ``git archive
COMMIT relay | tar -x -C DIR``) instead of this checkout's, to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from fuzz import bombs

CASES: dict[str, Callable[[], list[tuple[str, bytes]]]] = {
    "tar.bz2, 2 GiB of zeros": lambda: [("evidence.tar", bombs.tar_bz2_bomb(2 << 30))],
    "tar.bz2, 2 GiB and 512 bytes of zeros (as reported)": lambda: [
        ("evidence.tar", bombs.tar_bz2_bomb((2 << 30) + 512))],
    "tar of 8 tar.bz2 of 64 MiB each": lambda: [
        ("parts.tar", bombs.tar_of_bombs(8, 64 << 20))],
    "tar.xz of 6 tar.bz2 of 256 MiB": lambda: [
        ("parts.tar.xz", bombs.tar_of_bombs(6, 256 << 20, "xz"))],
    "zip of 6 zips of 99 MiB each": lambda: [("inner.zip", bombs.zip_of_zips(6, 99 << 20))],
    "docx, 4 parts of 256 MiB": lambda: [
        ("report.docx", bombs.office_bomb("docx", 4, 256 << 20))],
    "3 attachments: tar.bz2 of 1.5 GiB each": lambda: [
        (f"part-{n}.tar", bombs.tar_bz2_bomb(1536 << 20)) for n in range(3)],
    "tar: a text file and a damaged PNG": lambda: [("notes.tar", bombs.tar_with_damaged_png())],
}


def _size(folder: Path, skip: set[Path]) -> int:
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if Path(root, name) not in skip]
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def run_case(name: str, attachments: list[tuple[str, bytes]], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tiprelay-bombs-") as scratch:
        folder = Path(scratch)
        bundle, identity, ids = bombs.tip_bundle(folder, [attachments])
        tmp, out = folder / "tmp", folder / "out"
        tmp.mkdir()
        command = [sys.executable, "-c", "import sys; from relay.cli import main; sys.exit(main())",
                   "decrypt", "-i", str(identity), str(bundle), "-o", str(out)]
        if args.scrub:
            command.append("--scrub")
        if args.cap:
            command += ["--max-unpacked-total", str(args.cap)]
        environment = {**os.environ, "TMPDIR": str(tmp)}
        if args.code:
            environment["PYTHONPATH"] = str(args.code)
        tip = out / f"2026-03-04-{ids[0]}"
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _size(tmp, set()) + _size(out, {tip}))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        blocks_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock
        started = time.monotonic()
        # cwd: the scratch folder, so that ``-c`` finds no relay/ in the current folder.
        result = subprocess.run(command, env=environment, capture_output=True, text=True,
                                cwd=folder, timeout=3600)
        elapsed = time.monotonic() - started
        written = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock - blocks_before) * 512
        done.set()
        watcher.join()
        left_tmp = _size(tmp, set())
        left_files = sum(len(files) for _, _, files in os.walk(tmp))
        left_work = [p.name for p in out.glob(".*")] if out.is_dir() else []
        marked = [line for line in result.stdout.splitlines() if "METADATA" in line]
        print(f"{name}: {sum(len(d) for _, d in attachments)} bytes sent; "
              f"exit {result.returncode}, {elapsed:.1f} s, wrote {written / 2**20:.0f} MiB "
              f"(peak {peak / 2**20:.0f} MiB on disk); "
              f"left in TMPDIR: {left_tmp} bytes in {left_files} file(s); "
              f"left in OUT: {left_work or 'nothing'}")
        for line in marked:
            print(f"    {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, help="run the relay package in this folder")
    parser.add_argument("--scrub", action="store_true", help="decrypt --scrub")
    parser.add_argument("--cap", type=int, help="--max-unpacked-total (this checkout only)")
    parser.add_argument("--only", help="run the cases whose name holds this text")
    args = parser.parse_args()
    for name, make in CASES.items():
        if args.only is None or args.only in name:
            run_case(name, make(), args)


if __name__ == "__main__":
    main()
