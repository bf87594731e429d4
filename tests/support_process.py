"""Child processes for tests: a known signal disposition, and never left running.

A child inherits ignored signals across exec. A suite started under ``nohup``,
or as ``cmd &`` from a non-interactive shell, ignores SIGINT (and SIGHUP), so a
child started naively ignores them too, and a test that interrupts it hangs.
Every process a test starts goes through here: ``default_signal_dispositions``
runs in the child before exec and puts SIGINT, SIGTERM, SIGHUP, SIGQUIT and
SIGPIPE back to their defaults with nothing blocked; ``spawned`` kills the
child (and its process group when it leads one) when the block ends, however
it ends.

    with spawned([TIPRELAY, "encrypt", ...], stdin=subprocess.PIPE) as process:
        ...
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)
DEFAULT_TIMEOUT_SECONDS = 120.0
_REAP_SECONDS = 10.0

Argv = Sequence[str | Path]


def default_signal_dispositions() -> None:
    """In the child, before exec: the signals a test sends do what they do by default."""
    for number in RESET_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _with_default_signals(preexec: Callable[[], Any] | None) -> Callable[[], None]:
    def prepare_child() -> None:
        default_signal_dispositions()
        if preexec is not None:
            preexec()

    return prepare_child


def popen(argv: Argv, **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` with default signal dispositions in the child."""
    options["preexec_fn"] = _with_default_signals(options.get("preexec_fn"))
    return subprocess.Popen([str(part) for part in argv], **options)


def run(argv: Argv, **options: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with default signal dispositions and a timeout (the child is killed)."""
    options["preexec_fn"] = _with_default_signals(options.get("preexec_fn"))
    options.setdefault("timeout", DEFAULT_TIMEOUT_SECONDS)
    return subprocess.run([str(part) for part in argv], **options)


def kill_process(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the child, and its whole process group if it leads one; reap it."""
    if process.returncode is None:  # not reaped yet: its pid and group id are still ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_REAP_SECONDS)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@contextlib.contextmanager
def spawned(argv: Argv, **options: Any) -> Iterator[subprocess.Popen[Any]]:
    """A child with default signal dispositions, killed when the block ends (pass or fail)."""
    process = popen(argv, **options)
    try:
        yield process
    finally:
        kill_process(process)


def _ignored_here(number: int, frame: object) -> None:
    """Stands in for SIG_IGN in the test process: still ignored here, but a handler,
    which exec resets to the default in every child."""


def children_inherit_default_signals() -> None:
    """In the test process itself: no signal a child could inherit stays ignored or blocked.

    Covers children started by tools we do not control (subprocess.run in a
    helper, a browser driver). Signals this process ignored stay ignored here.
    """
    for number in RESET_SIGNALS:
        if number != signal.SIGPIPE and signal.getsignal(number) == signal.SIG_IGN:
            signal.signal(number, _ignored_here)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RESET_SIGNALS)
