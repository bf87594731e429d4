"""The one private folder metadata inspection and scrubbing write in: ``Workspace``.

mat2 unpacks archives into its own temporary folders (``TMPDIR``) and leaves
them behind when it fails; a failing archive may hold the source's plaintext.
So for one whole ``tiprelay decrypt`` or ``tiprelay scrub`` run:

- everything goes into ``OUT/.tiprelay-work-<random>/`` (mode 0700): mat2's
  ``TMPDIR``, scrub's working copies, mat2's report; it is removed when the
  run ends, whether it succeeded, failed, or was stopped (Ctrl-C, SIGTERM,
  SIGHUP); folders a crashed earlier run left (no process holds their lock)
  are removed when the next run starts;
- one budget, ``total`` bytes, bounds what the run writes there in total:
  every run of mat2 is charged what it was measured to unpack
  (relay.unpacking) or, if more, the most the folder grew while it ran;
- ``run`` starts mat2 in its own process group with ``RLIMIT_FSIZE`` at what
  is left of the budget, and a watchdog measures the folder every
  ``POLL_SECONDS``: past what is left (nested unpacking spreads over many
  files) or past its time limit, mat2's whole process group is killed. mat2
  also dies with us (PR_SET_PDEATHSIG), even if we are SIGKILLed.

Offline code: nothing here imports aiohttp (import-linter checks it).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from relay.manifest import human_size

WORK_PREFIX = ".tiprelay-work-"
LIMIT_OPTION = "--max-unpacked-total"
DEFAULT_TOTAL = 2 << 30
"""The default of that limit: bytes inspection and scrubbing may unpack and write in one run."""
POLL_SECONDS = 0.02
_LOCK = "lock"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
_STALE_UNLOCKED_SECONDS = 60  # a folder made but not yet locked is another run's, starting


@dataclass(frozen=True)
class RunResult:
    """How one bounded run ended: ``problem`` is '' when it exited 0 within its bounds."""

    problem: str
    written: int


class Workspace:
    """A private folder in ``parent`` and the budget of one run; a context manager."""

    def __init__(self, parent: Path, total: int) -> None:
        self.parent = parent
        self.total = total
        self.spent = 0
        self.folder = Path()
        self.tmp = Path()
        self._lock: int | None = None
        self._previous_handlers: dict[int, object] = {}

    # --- lifetime --------------------------------------------------------------

    def __enter__(self) -> Workspace:
        self.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_stale_workspaces(self.parent)
        self._catch_termination()
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=self.parent))
            self._lock = os.open(self.folder / _LOCK, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self.tmp = self.folder / "tmp"
            self.tmp.mkdir(mode=0o700)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self.folder != Path():
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None
            self._restore_termination()

    def _catch_termination(self) -> None:
        """SIGTERM and SIGHUP raise SystemExit: the folder is removed (Ctrl-C already does)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        for number in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(number) is signal.SIG_DFL:
                self._previous_handlers[number] = signal.signal(number, stop)

    def _restore_termination(self) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()

    # --- budget ------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.spent)

    def charge(self, count: int) -> None:
        self.spent += max(0, count)

    def over_budget(self, what: str) -> str:
        """The problem to report for a file whose unpacking the budget does not allow."""
        limit = f"the {human_size(self.total)} limit on what inspection may unpack in one run"
        left = self.remaining
        if human_size(left) == human_size(self.total):  # nothing, or next to nothing, spent
            return f"not inspected: it would {what} more than {limit} ({LIMIT_OPTION})"
        if left == 0:
            return f"not inspected: {limit} is used up ({LIMIT_OPTION})"
        return (f"not inspected: it would {what} more than {human_size(left)}, what is left of "
                f"{limit} ({LIMIT_OPTION})")

    # --- the folder ----------------------------------------------------------------

    def slot(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.folder))

    def size(self) -> int:
        """Bytes in the folder now (apparent sizes: a sparse file counts whole)."""
        return _tree_size(self.folder)

    def clear_tmp(self) -> None:
        """Empty mat2's TMPDIR: what a failed run left there."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(mode=0o700, exist_ok=True)

    def output_file(self) -> IO[bytes]:
        """An anonymous file inside the folder, for what mat2 prints."""
        return tempfile.TemporaryFile(dir=self.folder)

    # --- bounded runs ----------------------------------------------------------------

    def run(
        self,
        args: list[str],
        cwd: Path,
        *,
        estimate: int,
        timeout_seconds: float,
        memory_bytes: int,
        output: IO[bytes] | None = None,
    ) -> RunResult:
        """Run ``args`` within what is left of the budget; charged max(estimate, growth)."""
        allowance = self.remaining

        def written_here() -> int:
            # What mat2 prints goes to an anonymous file: no name to walk to, but counted.
            printed = os.fstat(output.fileno()).st_size if output is not None else 0
            return self.size() + printed

        start_size = written_here()

        parent = os.getpid()

        def child_setup() -> None:
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            # Killed with us even by SIGKILL: no watchdog would be left to stop it.
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            resource.setrlimit(resource.RLIMIT_FSIZE, (allowance, allowance))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        environment = dict(os.environ)
        for name in ("TMPDIR", "TMP", "TEMP", "TEMPDIR"):
            environment[name] = str(self.tmp)
        grown = 0
        problem = ""
        deadline = time.monotonic() + timeout_seconds
        with subprocess.Popen(
            args,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if output is None else output,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_setup,  # no threads start between fork and exec here
            start_new_session=True,
            restore_signals=True,
        ) as process:
            try:  # at once: whatever stops us (Ctrl-C) kills mat2's group first
                while True:
                    try:
                        status = process.wait(timeout=POLL_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    grown = max(grown, written_here() - start_size)
                    if grown > allowance:
                        problem = self.over_budget("write")
                    elif time.monotonic() > deadline:
                        problem = f"it took more than {timeout_seconds:g} s; stopped"
                    if problem:
                        _kill_group(process)
                        status = process.returncode
                        break
            except BaseException:
                _kill_group(process)
                raise
        grown = max(grown, written_here() - start_size)
        # Past the file-size limit: SIGXFSZ, or (Python ignores it) a failed write.
        if not problem and (grown > allowance or (status != 0 and grown >= allowance)
                            or status == -signal.SIGXFSZ):
            problem = self.over_budget("write")
        self.charge(max(estimate, grown))
        self.clear_tmp()
        if not problem and status < 0:
            problem = f"it was stopped by signal {-status} (memory limit?)"
        elif not problem and status != 0:
            problem = "it failed (damaged, hostile, or a variant it does not handle)"
        return RunResult(problem, grown)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tree_size(folder: Path) -> int:
    total = 0
    stack = [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed while we looked
        except OSError:
            continue
    return total


def remove_stale_workspaces(parent: Path) -> list[Path]:
    """Remove the workspaces in ``parent`` no running process holds; those removed."""
    removed = []
    for entry in parent.glob(WORK_PREFIX + "*"):
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            lock = os.open(entry / _LOCK, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if time.time() - entry.stat().st_mtime < _STALE_UNLOCKED_SECONDS:
                continue
            lock = None
        except OSError:
            continue
        try:
            if lock is not None:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running decrypt or scrub works in it
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            if lock is not None:
                os.close(lock)
    return removed
