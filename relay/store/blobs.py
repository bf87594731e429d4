"""Writing files durably in the data folder: random names, fsync, times kept to the day.

Shared by every kind of blob the store keeps (submissions, uploads, replies).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from relay.errors import StorageError, StorageFullError
from relay.file_times import midnight_of_day_ns, set_times_to_midnight

_ID = re.compile(r"[0-9a-f]{32}")
HOUR_FORMAT = "%Y-%m-%dT%H"


def is_valid_id(value: str) -> bool:
    """True for a submission or upload id: 32 lower-case hex digits."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def new_id() -> str:
    """A fresh random id: 32 hex digits."""
    return secrets.token_hex(16)


def utc_now() -> datetime:
    """Now, in UTC (the one clock the store reads)."""
    return datetime.now(UTC)


def today() -> str:
    """The UTC day, "YYYY-MM-DD": the only time a stored row keeps."""
    return utc_now().date().isoformat()


def current_hour() -> str:
    """The UTC hour, "YYYY-MM-DDTHH" (upload expiry)."""
    return utc_now().strftime(HOUR_FORMAT)


@contextmanager
def disk_errors() -> Iterator[None]:
    """An OSError while storing (a full disk...) becomes a StorageError a person can read."""
    try:
        yield
    except OSError as exc:
        raise storage_error(exc) from exc


@contextmanager
def database_errors(message: str) -> Iterator[None]:
    """An SQLite error while recording becomes a StorageError (StorageFullError when full)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise storage_error(exc, message) from exc


def disk_error_message(exc: BaseException) -> str:
    """What a person reads when the disk refused a write."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "input/output error"
    return f"The submission could not be stored: {reason}."


def is_disk_full(exc: BaseException) -> bool:
    """A full file system (or quota), seen by the OS or by SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


def storage_error(exc: BaseException, message: str | None = None) -> StorageError:
    """The StorageError a person reads for ``exc``: StorageFullError when the disk is full."""
    if message is None:
        message = disk_error_message(exc)
    return StorageFullError(message) if is_disk_full(exc) else StorageError(message)


def blur_file_times(path: Path, day: str) -> None:
    """Set a file's access and modification times to midnight UTC of its day.

    They would otherwise record the arrival to the nanosecond. (Its change time
    cannot be set: the store's periodic ``blur_file_times`` blurs that.)
    """
    set_times_to_midnight(path, midnight_of_day_ns(day))


def fsync_file(path: Path) -> None:
    """Make a file's content durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_path(path: Path) -> None:
    """Remove a file, or a whole folder (recovery clears what is not ours)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class TemporaryBlob:
    """A new file in ``tmp/`` being written: hashed and counted as it grows.

    ``finish`` fsyncs and closes it; its owner then renames it into place.
    Leaving the ``with`` block removes whatever is still at the temporary path,
    so a refused or failed write leaves nothing behind.
    """

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"{new_id()}.tmp"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._finished: tuple[Path, int, str] | None = None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def is_open(self) -> bool:
        """True until finished or abandoned."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Append bytes."""
        if self._file is None:
            raise StorageError("This file is already committed or abandoned.")
        with disk_errors():
            self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def finish(self) -> tuple[Path, int, str]:
        """fsync and close; (path, size, hex SHA-256). Again after finishing: the same."""
        if self._finished is not None:
            return self._finished
        if self._file is None:
            raise StorageError("This file is already committed or abandoned.")
        file, self._file = self._file, None
        try:
            with disk_errors():
                file.flush()
                os.fsync(file.fileno())
        finally:
            file.close()
        self._finished = (self.path, self._size, self._hash.hexdigest())
        return self._finished

    def abort(self) -> None:
        """Discard what was written (the file goes even when closing it fails: a full disk)."""
        file, self._file = self._file, None
        try:
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> TemporaryBlob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()
