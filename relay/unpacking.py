"""What an archive unpacks to, counted by streaming it: ``measure_unpacked``.

mat2 unpacks archives to disk to read or clean them: tar (plain, gzip, bzip2,
xz), zip and the zip-based formats (DOCX, ODT, EPUB...), and any archive found
inside one, again. Before mat2 sees a file, ``measure_unpacked`` reads it the
way mat2 would unpack it and counts the *decompressed* bytes, nested archives
included (a member counts once as a file and again for what it unpacks to),
and stops as soon as the count passes the limit. Declared sizes (tar headers,
zip entries) only make it stop sooner: they are never trusted to be small.

Nothing is written, but for zips found inside an archive, which Python can
only read seekable: those are spooled into ``spool_dir`` while counted. What
passes for both a tar and a zip is counted as both (mat2 picks by name).
Archives nested more than ``MAX_DEPTH`` deep, more than ``MAX_ENTRIES``
members, tar extension headers over 1 MiB and anything the readers refuse
are problems: such a file is not given to mat2.

Offline code: nothing here imports aiohttp (import-linter checks it).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

MAX_DEPTH = 4
"""Archives inside archives, counting the file itself as the first."""
MAX_ENTRIES = 20_000
"""Members over all levels."""

_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 8 << 20
_MAX_TAR_HEADER = 1 << 20  # pax and GNU long-name headers are read whole into memory
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Extensions mat2 opens as zips: a zip inside an archive under one of these
# names is measured even if it does not start like one (data before a zip).
_ZIP_SUFFIXES = frozenset((
    ".zip", ".docx", ".docm", ".xlsx", ".xlsm", ".pptx", ".pptm", ".odt", ".ods", ".odp",
    ".odg", ".odf", ".odc", ".odi", ".odb", ".ott", ".ots", ".otp", ".epub", ".oxt", ".jar",
    ".apk", ".xpi",
))
_READ_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, OSError, EOFError,
    ValueError, lzma.LZMAError, zlib.error, NotImplementedError, RuntimeError,
    struct.error, UnicodeError, KeyError, OverflowError,
)


@dataclass(frozen=True)
class Unpacked:
    """``size``: bytes counted (0 for a file that is no archive); ``problem``: why not to unpack."""

    size: int
    problem: str = ""
    over_limit: bool = False


class _Stop(Exception):
    def __init__(self, problem: str = "", over_limit: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.over_limit = over_limit


class _Count:
    def __init__(self, limit: int, deadline: float, max_entries: int) -> None:
        self.limit = limit
        self.deadline = deadline
        self.max_entries = max_entries
        self.total = 0
        self.entries = 0

    def add(self, count: int) -> None:
        self.total += count
        if self.total > self.limit:
            raise _Stop(over_limit=True)
        self.tick()

    def tick(self) -> None:
        """Stop past the deadline: also checked as input is read, since input that
        unpacks to nothing (a million empty gzip members) never reaches ``add``."""
        if time.monotonic() > self.deadline:
            raise _Stop("measuring what it unpacks to took too long")

    def declared(self, size: int) -> None:
        """A member says it holds ``size`` bytes: stop now if they cannot fit."""
        if self.total + size > self.limit:
            raise _Stop(over_limit=True)

    def entry(self, count: int = 1) -> None:
        self.entries += count
        if self.entries > self.max_entries:
            raise _Stop(f"it holds more than {self.max_entries} archive members")


class _Counted(io.RawIOBase):
    """Reads ``source``, counting every byte handed out."""

    def __init__(self, source: IO[bytes], count: _Count) -> None:
        self._source = source
        self._count = count

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(target).cast("B")
        data = self._source.read(min(len(view), _CHUNK))
        view[: len(data)] = data
        self._count.add(len(data))
        return len(data)


class _Replay(io.RawIOBase):
    """``head``, then the rest of ``source``: what was peeked at is read again."""

    def __init__(self, head: bytes, source: IO[bytes], count: _Count) -> None:
        self._head = head
        self._source = source
        self._count = count

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(target).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        self._count.tick()
        data = self._source.read(min(len(view), _CHUNK))
        view[: len(data)] = data
        return len(data)


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses the extension headers tarfile would read whole into memory when large."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        special = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.GNUTYPE_SPARSE,
                   tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
        if self.type in special and self.size > _MAX_TAR_HEADER:
            raise _Stop(f"a tar extension header declares {self.size} bytes")
        member: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member


def measure_unpacked(
    path: Path,
    limit: int,
    spool_dir: Path,
    *,
    timeout_seconds: float = 120,
    max_depth: int = MAX_DEPTH,
    max_entries: int = MAX_ENTRIES,
) -> Unpacked:
    """How many bytes mat2 would unpack ``path`` to, counted up to ``limit``; see above."""
    count = _Count(limit, time.monotonic() + timeout_seconds, max_entries)
    walker = _Walker(count, spool_dir, max_depth)
    try:
        with open(path, "rb") as handle:
            # Both readings, counted both: a tar whose last member is a zip also
            # passes for a zip (its directory is near the end), and mat2 picks by name.
            is_tar = walker.maybe_tar(handle, 1)
            handle.seek(0)
            if zipfile.is_zipfile(handle):
                handle.seek(0)
                try:
                    walker.zip(handle, 1)
                except _READ_ERRORS:
                    if not is_tar:
                        raise
                    # A tar of documents ending with one: what was read is counted,
                    # and mat2, reading it as a zip, would fail there too.
    except _Stop as stop:
        return Unpacked(count.total, stop.problem, stop.over_limit)
    except RecursionError:
        return Unpacked(count.total, "its archive structure nests too deep to read")
    except _READ_ERRORS as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return Unpacked(count.total, f"its archive structure cannot be read ({reason})")
    return Unpacked(count.total)


def _decompressing(head: bytes, source: IO[bytes]) -> IO[bytes] | None:
    """A reader of ``source``'s decompressed bytes, by its magic number; None: not compressed."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(source)
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return lzma.LZMAFile(source)
    return None


def _is_tar_header(block: bytes) -> bool:
    if len(block) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


class _Walker:
    def __init__(self, count: _Count, spool_dir: Path, max_depth: int) -> None:
        self.count = count
        self.spool_dir = spool_dir
        self.max_depth = max_depth

    def _deeper(self, depth: int) -> None:
        if depth > self.max_depth:
            raise _Stop(f"it holds archives nested more than {self.max_depth} deep")

    def maybe_tar(self, source: IO[bytes], depth: int) -> bool:
        """Measure ``source`` if it is a tar (compressed or not); whether it was one.

        What was read of a source that is no tar is left unread; the caller drains it.
        """
        head = source.read(tarfile.BLOCKSIZE)
        # tarfile.open's order: a plain tar first (its first name may well start
        # like a compressed stream), then the compressions.
        decompressed = None
        if not _is_tar_header(head):
            replayed = io.BufferedReader(_Replay(head, source, self.count), _CHUNK)
            decompressed = _decompressing(head, replayed)
        if decompressed is None:
            first, rest = head, source
        else:
            try:
                first = decompressed.read(tarfile.BLOCKSIZE)
            except _READ_ERRORS:
                return False  # compressed and damaged, or not compressed at all: no tar
            rest = decompressed
        if not _is_tar_header(first):
            return False
        self._deeper(depth)
        counted = io.BufferedReader(_Counted(_Replay(first, rest, self.count), self.count), _CHUNK)  # type: ignore[arg-type]
        with tarfile.open(fileobj=counted, mode="r|", tarinfo=_BoundedTarInfo) as archive:
            for member in archive:
                self.count.entry()
                self.count.declared(member.size)
                if member.isreg():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    self.member(handle, member.name, depth)
        return True

    def zip(self, source: IO[bytes], depth: int) -> None:
        self._deeper(depth)
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            self.count.entry(len(entries))
            self.count.declared(sum(entry.file_size for entry in entries))
            for entry in entries:
                # Not ZipInfo.is_dir(): it fails on an entry with an empty name,
                # which a hostile zip may hold (the fuzzer found one).
                if entry.filename.endswith("/"):
                    continue
                with archive.open(entry) as raw:
                    counted = io.BufferedReader(_Counted(raw, self.count), _CHUNK)
                    self.member(counted, entry.filename, depth)

    def member(self, handle: IO[bytes], name: str, depth: int) -> None:
        """One member (its bytes counted by whoever made ``handle``): measure what it holds."""
        head = handle.read(tarfile.BLOCKSIZE)
        suffix = PurePosixPath(name).suffix.lower()
        if head.startswith(_ZIP_MAGICS) or suffix in _ZIP_SUFFIXES:
            with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY, dir=str(self.spool_dir)) as spool:
                spool.write(head)
                while chunk := handle.read(_CHUNK):
                    spool.write(chunk)
                spool.seek(0)
                if zipfile.is_zipfile(spool):
                    spool.seek(0)
                    self.zip(spool, depth + 1)
                spool.seek(0)
                self.maybe_tar(spool, depth + 1)
            return
        self.maybe_tar(io.BufferedReader(_Replay(head, handle, self.count), _CHUNK), depth + 1)
        while handle.read(_CHUNK):
            pass  # the rest of the member: mat2 unpacks it as a file
