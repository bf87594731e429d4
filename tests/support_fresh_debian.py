"""The fresh-Debian check, started as soon as pytest knows it will run.

tests/fresh_debian.sh spends minutes installing packages into a new container,
mostly waiting on downloads and the disk. When tests/test_fresh_debian.py is
selected, the script starts right after collection (``start_early``, from
tests/conftest.py) and runs beside the rest of the suite on its own private
Docker engine; the test only collects the outcome (``finish``). Whatever
happens, the script is stopped when the session ends (``stop``), by SIGTERM
to its process group first, so that its cleanup stops the engine it started.
A run of the whole suite on several workers (scripts/test) starts the script
itself, before pytest, and the test reads its outcome from files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.support_process import popen

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "fresh_debian.sh"
TEST_FILE = "test_fresh_debian.py"
STOP_GRACE_SECONDS = 110


@dataclass
class _Run:
    process: subprocess.Popen[Any]
    stdout: IO[str]
    stderr: IO[str]
    started: float


_run: _Run | None = None


RESULT_DIR_VARIABLE = "TIPRELAY_FRESH_DEBIAN_DIR"
"""Set by scripts/test, which starts the script itself before pytest when it runs
the whole suite (on several workers, no one worker can own it): the folder where
the script's stdout, stderr and, when it has ended, exit status appear."""


def start_early(items: list[Any]) -> None:
    """Start the script now if a test of tests/test_fresh_debian.py was selected.

    Only in a plain pytest run: scripts/test starts it for a run on several
    workers (``RESULT_DIR_VARIABLE``), and a worker of a run started otherwise
    leaves it to the test (``finish``), so that it never runs twice.
    """
    if os.environ.get(RESULT_DIR_VARIABLE) or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if any(Path(str(item.fspath)).name == TEST_FILE for item in items):
        _start()


def _start() -> _Run:
    global _run
    if _run is None:
        # Open for the whole session; stop() closes them.
        stdout = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        process = popen(
            ["bash", str(SCRIPT)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        _run = _Run(process, stdout, stderr, time.monotonic())
    return _run


def finish(timeout_seconds: float) -> tuple[int, str, str]:
    """Wait for the script (starting it if it was not); (exit status, stdout, stderr)."""
    started_by_scripts_test = os.environ.get(RESULT_DIR_VARIABLE)
    if started_by_scripts_test:
        return _collect(Path(started_by_scripts_test), timeout_seconds)
    run = _start()
    remaining = max(1.0, timeout_seconds - (time.monotonic() - run.started))
    note = ""
    try:
        run.process.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        _terminate(run)
        note = "\n(stopped: the fresh Debian check ran out of time)"
    return run.process.returncode, _read(run.stdout), _read(run.stderr) + note


def stop() -> None:
    """At the end of the session: stop the script if it still runs; close its output."""
    if _run is None:
        return
    if _run.process.poll() is None:
        _terminate(_run)
    _run.stdout.close()
    _run.stderr.close()


def _terminate(run: _Run) -> None:
    """SIGTERM the group (the script's cleanup stops its dockerd), then SIGKILL it."""
    for number, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 10)):
        try:
            os.killpg(run.process.pid, number)
        except ProcessLookupError:
            break
        try:
            run.process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _read(stream: IO[str]) -> str:
    stream.seek(0)
    return stream.read()


def _collect(folder: Path, timeout_seconds: float) -> tuple[int, str, str]:
    """The outcome of the run scripts/test started, once its exit status is written."""
    status_file = folder / "status"
    deadline = time.monotonic() + timeout_seconds
    while not status_file.exists():
        if time.monotonic() > deadline:
            note = "\n(the fresh Debian check started by scripts/test has not ended in time)"
            return 124, _text(folder / "stdout"), _text(folder / "stderr") + note
        time.sleep(1)
    status = int(status_file.read_text().strip() or 1)
    return status, _text(folder / "stdout"), _text(folder / "stderr")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
