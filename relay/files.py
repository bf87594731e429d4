"""File helpers shared by the relay's store and the reviewer's tools: durability, hashing,
opening only regular files."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

HASH_CHUNK_BYTES = 1024 * 1024
"""Files are hashed in pieces this big: bounded memory whatever their size."""


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in bounded chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class NotARegularFileError(OSError):
    """The path names a FIFO, device, socket, directory or symlink, not a plain file."""


def describe_file_type(mode: int) -> str:
    """What kind of file ``mode`` is, in words for a person."""
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((words for is_kind, words in kinds if is_kind(mode)), "not a regular file")


def open_regular_file(path: Path) -> io.FileIO:
    """Open ``path`` for reading only if it is a regular file; never blocks, never follows links.

    Opening a FIFO for reading waits for a writer, forever if none comes, and a
    device may never end: so lstat first, then open non-blocking without
    following a symlink, and check the descriptor itself (the path may have
    been swapped in between). Raises NotARegularFileError, or OSError as open does.
    """
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotARegularFileError(f"{path.name} is {describe_file_type(mode)}")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(f"{path.name} is {describe_file_type(mode)}")
        os.set_blocking(descriptor, True)
        return io.FileIO(descriptor, "rb", closefd=True)
    except BaseException:
        os.close(descriptor)
        raise
