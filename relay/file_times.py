"""What file system times say about arrivals: no more than the day, and no reads.

A file's access and modification times can be set, and are set to midnight UTC
of its day. Its inode change time (ctime) cannot be set: any change to the
inode, re-stamping included, sets it to *now*. So ``restamp_to_midnight`` run
over every file and folder at once (the store's periodic blur) leaves all
their change times reading the moment of that run, which says only "arrived
before this run". Reading a file would move its access time to the moment of
the read; ``open_without_atime`` reads without touching it.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

_NS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400


def midnight_ns(timestamp_ns: int) -> int:
    """Midnight UTC of the day ``timestamp_ns`` (ns since the epoch) falls in, in ns."""
    day_length = _SECONDS_PER_DAY * _NS_PER_SECOND
    return timestamp_ns - timestamp_ns % day_length


def midnight_of_day_ns(day: str) -> int:
    """Midnight UTC of ``day`` ("YYYY-MM-DD"), in ns since the epoch."""
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return int(midnight.timestamp()) * _NS_PER_SECOND


def set_times_to_midnight(path: Path, midnight: int) -> None:
    """Set the access and modification times of ``path`` to ``midnight`` (ns); not followed."""
    os.utime(path, ns=(midnight, midnight), follow_symlinks=False)


def restamp_to_midnight(path: Path) -> bool:
    """Floor both times of ``path`` to midnight of its modification day; False if it is gone.

    Its change time becomes now whatever the times were, so every path
    re-stamped in one run shares that run's change time.
    """
    try:
        modified = os.lstat(path).st_mtime_ns
        set_times_to_midnight(path, midnight_ns(modified))
    except FileNotFoundError:  # deleted meanwhile (a reviewer, retention, an upload)
        return False
    return True


def open_without_atime(path: Path) -> BinaryIO:
    """Open ``path`` for reading without updating its access time, where the OS allows.

    Linux grants O_NOATIME only to the file's owner (or CAP_FOWNER) and refuses
    anyone else with EPERM; such a reader still gets the file, and the read
    then stamps the access time as any read would.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC
    quiet = getattr(os, "O_NOATIME", 0)
    try:
        descriptor = os.open(path, flags | quiet)
    except PermissionError as exc:
        if exc.errno != errno.EPERM or not quiet:
            raise
        descriptor = os.open(path, flags)
    return os.fdopen(descriptor, "rb")
