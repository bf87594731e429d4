"""Run a command with a pseudo-terminal as its controlling terminal.

Stock `age` (and `tiprelay` when no passphrase file is given) asks for
passphrases on /dev/tty, never on stdin. The tests drive those prompts the way
a person would: the child gets a fresh session whose controlling terminal is a
pty, and we type each answer into the pty once its prompt has appeared.
stdin and stdout stay ordinary files or pipes, so ciphertext never passes
through the terminal.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.support_process import default_signal_dispositions, kill_process


@dataclass
class TtyResult:
    """What a child run on a pty did."""

    returncode: int
    stdout: bytes
    stderr: bytes
    terminal: bytes  # everything the child wrote to its terminal


def _make_controlling(slave_fd: int) -> None:
    # Runs in the child after setsid() (start_new_session): known signal
    # dispositions (whatever this suite was started with), then claim the pty.
    default_signal_dispositions()
    fcntl.ioctl(slave_fd, termios.TIOCSCTTY, 0)


def run_on_tty(
    argv: Sequence[str | Path],
    *,
    answers: Sequence[tuple[bytes, bytes]] = (),
    stdin: IO[Any] | int | None = subprocess.DEVNULL,
    stdout_to_tty: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> TtyResult:
    """Run ``argv`` with a pty as controlling terminal; answer prompts in order.

    ``answers`` pairs a prompt fragment with what to type when it appears (a
    newline is added). With ``stdout_to_tty`` the child's stdout is the pty
    itself (to test refusing binary output to a terminal); otherwise stdout
    and stderr are pipes, returned in the result.
    """
    master, slave = os.openpty()
    pending = list(answers)
    terminal = bytearray()
    matched_up_to = 0  # prompts are looked for only after the previous one
    try:
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=stdin,
            stdout=slave if stdout_to_tty else subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: _make_controlling(slave),
            pass_fds=(slave,),
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    stdout_chunks: list[bytes] = []
    stderr_chunks: list[bytes] = []
    streams = {
        f.fileno(): (f, sink)
        for f, sink in ((process.stdout, stdout_chunks), (process.stderr, stderr_chunks))
        if f is not None
    }
    deadline = time.monotonic() + timeout
    master_open = True
    try:
        while streams or master_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{argv[0]} did not finish; its terminal: {bytes(terminal)!r}")
            watched = list(streams) + ([master] if master_open else [])
            ready, _, _ = select.select(watched, [], [], min(remaining, 0.5))
            for fd in ready:
                if fd == master:
                    try:
                        data = os.read(master, 4096)
                    except OSError:  # EIO: the child closed its terminal
                        data = b""
                    if not data:
                        master_open = False
                        continue
                    terminal += data
                    while pending and terminal.find(pending[0][0], matched_up_to) >= 0:
                        prompt, answer = pending.pop(0)
                        matched_up_to = terminal.find(prompt, matched_up_to) + len(prompt)
                        os.write(master, answer + b"\n")
                else:
                    handle, sink = streams[fd]
                    data = os.read(fd, 65536)
                    if data:
                        sink.append(data)
                    else:
                        handle.close()
                        del streams[fd]
            if not ready and process.poll() is not None and not streams:
                break
        returncode = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        kill_process(process)  # and its session's process group, on any failure
        os.close(master)
    return TtyResult(returncode, b"".join(stdout_chunks), b"".join(stderr_chunks), bytes(terminal))
