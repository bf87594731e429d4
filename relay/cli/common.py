"""What every tiprelay command shares: error reporting, passphrases, safe output."""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn

import click

from relay.crypto import errors as age_errors
from relay.errors import USER_ERRORS

# What to do next, for the errors a person most often meets.
HINTS: dict[type[Exception], str] = {
    age_errors.WrongPassphraseError: "Type the passphrase again; it is case-sensitive.",
    age_errors.NoIdentityMatchError: (
        "Use the identity of a reviewer this file was encrypted to (its age1... "
        "recipient, or with --gpg their OpenPGP key, must have been given when encrypting)."
    ),
    age_errors.NotAnAgeFileError: "Check that you passed the .age file, not something else.",
    age_errors.PayloadError: "Copy the file again from its source; it was cut or altered.",
    age_errors.KeyFormatError: "Check the key for typos; age keys are Bech32 strings.",
}


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Print an error for a person and exit with status 1."""
    click.echo(f"tiprelay: error: {message}", err=True)
    if hint:
        click.echo(f"tiprelay: hint: {hint}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn tiprelay's own errors into a message and exit status 1."""
    try:
        yield
    except USER_ERRORS as exc:
        hint = next((h for kind, h in HINTS.items() if isinstance(exc, kind)), None)
        fail(str(exc), hint)
    except OSError as exc:
        name = f" ({exc.filename})" if exc.filename else ""
        fail(f"{exc.strerror or exc}{name}")


def passphrase_reader(passphrase_file: Path | None, prompt: str) -> Callable[[], bytes]:
    """A callable that returns the passphrase: from a file, else asked on the terminal."""

    def read() -> bytes:
        if passphrase_file is not None:
            lines = passphrase_file.read_bytes().splitlines()
            if not lines or not lines[0]:
                fail(f"The passphrase file {passphrase_file} is empty.")
            return lines[0]
        if not _has_terminal():
            fail(
                "A passphrase is needed but there is no terminal to ask on.",
                "Pass --passphrase-file FILE.",
            )
        return getpass.getpass(prompt).encode("utf-8")

    return read


def _has_terminal() -> bool:
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(
    path: Path | None, *, mode: int = 0o644, durable: bool = False
) -> Iterator[BinaryIO]:
    """Write to ``path`` all or nothing (stdout when None).

    The data goes to a temporary file beside the target, renamed over it only
    on success; on any failure it is removed, so a half-written output never
    appears under the real name. ``durable`` adds an fsync before the rename,
    for files whose loss in a power cut matters more than speed.
    """
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = path.parent if str(path.parent) else Path(".")
    with _termination_raises():
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while a temporary output exists.

    Python's default action for them ends the process on the spot, which would
    leave the partial temporary file (for decrypt: plaintext) behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def no_core_dumps() -> None:
    """Turn core dumps off before any secret is in memory; refuse to go on if that fails."""
    from relay.process_hardening import CoreDumpError, disable_core_dumps

    try:
        warnings = disable_core_dumps()
    except CoreDumpError as exc:
        fail(str(exc), "Run it where core dumps can be switched off (ulimit -c 0), then again.")
    for warning in warnings:
        click.echo(f"tiprelay: warning: {warning}", err=True)
