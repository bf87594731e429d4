"""Extracting a submission archive safely, on the reviewer's offline machine.

The archive may come from anyone holding the public keys, so nothing in it is
trusted. The reader walks the tar stream once, front to back, and accepts only
what tiprelay writes: regular files named ``message.txt``, ``submission.json``
and ``files/<name>``, in ustar headers with optional pax ``x`` headers. Links,
devices, directories, absolute or ``..`` paths, duplicates, non-UTF-8 names and
anything past the limits are refused. Attachment names are sanitised again.

Everything is written into a fresh temporary folder beside ``dest`` that is
renamed to ``dest`` only when the whole stream, padding included, has been read
and checked; on any failure the temporary folder is removed. Reading to the end
matters: the caller's age stream authenticates its last chunk only at EOF.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from relay.container import tarformat
from relay.container.names import NameAllocator
from relay.container.writer import (
    FILES_DIR,
    FORMAT_VERSION,
    MESSAGE_PATH,
    META_PATH,
    SEALED_BY_VALUES,
)
from relay.crypto.padding import padme_length
from relay.digits import parse_ascii_decimal
from relay.errors import ArchiveTooLargeError, ContainerError

_CHUNK = 64 * 1024
_REFUSED_TYPES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a directory",
    b"6": "a FIFO",
    b"g": "a global pax header",
    b"K": "a GNU long link name",
    b"L": "a GNU long name",
    b"S": "a GNU sparse file",
}
_UTF8_CHARSET = b"ISO-IR 10646 2000 UTF-8"


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what one archive may make the reviewer's machine do."""

    max_entries: int = 10_000
    max_total_bytes: int = 4 * 1024**3
    max_name_bytes: int = 1024
    max_pax_header_bytes: int = 64 * 1024
    max_meta_bytes: int = 64 * 1024


@dataclass(frozen=True)
class ExtractedSubmission:
    """What one extraction produced under ``path``."""

    path: Path
    meta: dict[str, Any]
    message_size: int
    files: list[tuple[str, int]] = field(default_factory=list)
    """(name under ``files/``, size) of each attachment, in archive order."""
    warnings: list[str] = field(default_factory=list)


def extract_submission(
    stream: BinaryIO, dest: Path, limits: ExtractLimits | None = None
) -> ExtractedSubmission:
    """Extract the archive read from ``stream`` into the new folder ``dest``, or refuse.

    Raises ContainerError (ArchiveTooLargeError for limits) with a message for the
    reviewer; in that case ``dest`` does not exist afterwards.
    """
    dest = Path(dest)
    if os.path.lexists(dest):
        raise ContainerError(f"{dest} already exists; choose a folder that does not exist yet.")
    if not dest.parent.is_dir():
        raise ContainerError(f"The folder {dest.parent} does not exist.")
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        result = _Extraction(stream, staging, limits or ExtractLimits()).run()
        if os.path.lexists(dest):
            raise ContainerError(f"{dest} appeared while extracting; nothing was written there.")
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return replace(result, path=dest)


def _shown(name: str, limit: int = 120) -> str:
    """A name quoted for a message: invisible and control characters escaped, cut to ``limit``."""
    visible = "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") or char == "\\"
        else char
        for char in name[:limit]
    )
    return f"'{visible}'" + ("..." if len(name) > limit else "")


class _Extraction:
    def __init__(self, stream: BinaryIO, staging: Path, limits: ExtractLimits) -> None:
        self._stream = stream
        self._staging = staging
        self._limits = limits
        self._offset = 0
        self._entries = 0
        self._total_bytes = 0
        self._seen_paths: set[str] = set()
        self._names = NameAllocator()
        self.meta: dict[str, Any] | None = None
        self.message_size = -1
        self.files: list[tuple[str, int]] = []
        self.warnings: list[str] = []

    # -- reading the stream ------------------------------------------------

    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._stream.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._offset += len(data)
        return data

    def _read_exact(self, size: int, what: str) -> bytes:
        data = self._read(size)
        if len(data) != size:
            raise ContainerError(f"The archive is truncated: it ends inside {what}.")
        return data

    def _data_chunks(self, size: int, what: str) -> Iterator[bytes]:
        remaining = size
        while remaining:
            chunk = self._read_exact(min(remaining, _CHUNK), what)
            remaining -= len(chunk)
            yield chunk
        self._read_exact(-size % tarformat.BLOCK_SIZE, what)

    # -- the walk ------------------------------------------------------------

    def run(self) -> ExtractedSubmission:
        (self._staging / "files").mkdir(mode=0o700)
        pax: dict[str, bytes] | None = None
        while True:
            header_offset = self._offset
            block = self._read(tarformat.BLOCK_SIZE)
            if not block and header_offset == 0:
                raise ContainerError("The archive is empty.")
            if len(block) < tarformat.BLOCK_SIZE:
                raise ContainerError("The archive is truncated: it has no end-of-archive marker.")
            if block == tarformat.ZERO_BLOCK:
                break
            header = tarformat.RawHeader(block, header_offset)
            if header.typeflag == tarformat.PAX_HEADER:
                if pax is not None:
                    raise ContainerError("The archive is damaged: two pax headers in a row.")
                pax = self._read_pax(header.size)
                continue
            self._entry(header, pax or {})
            pax = None
        if pax is not None:
            raise ContainerError("The archive is damaged: a pax header without an entry.")
        self._check_padding()
        if self.meta is None or self.message_size < 0:
            missing = META_PATH if self.meta is None else MESSAGE_PATH
            raise ContainerError(f"Not a tiprelay submission: {missing} is missing.")
        return ExtractedSubmission(
            self._staging, self.meta, self.message_size, self.files, self.warnings
        )

    def _read_pax(self, size: int) -> dict[str, bytes]:
        if size > self._limits.max_pax_header_bytes:
            raise ArchiveTooLargeError(f"The archive has a pax header of {size} bytes; too large.")
        return tarformat.parse_pax_records(b"".join(self._data_chunks(size, "a pax header")))

    def _entry(self, header: tarformat.RawHeader, pax: dict[str, bytes]) -> None:
        self._entries += 1
        if self._entries > self._limits.max_entries:
            raise ArchiveTooLargeError(
                f"The archive has more than {self._limits.max_entries} entries."
            )
        name = self._entry_name(header, pax)
        kind = _REFUSED_TYPES.get(header.typeflag)
        if kind is not None:
            raise ContainerError(f"The archive contains {kind}, {_shown(name)}; refused.")
        if header.typeflag not in (tarformat.REGULAR_FILE, tarformat.REGULAR_FILE_OLD):
            raise ContainerError(
                f"The archive contains {_shown(name)} of unknown type {header.typeflag!r}; refused."
            )
        path = _checked_path(name)
        if path in self._seen_paths:
            raise ContainerError(f"The archive contains {_shown(name)} twice; refused.")
        self._seen_paths.add(path)
        size = _entry_size(header, pax)
        self._total_bytes += size
        if self._total_bytes > self._limits.max_total_bytes:
            raise ArchiveTooLargeError(
                f"The archive holds more than {self._limits.max_total_bytes} bytes of files."
            )
        if path == MESSAGE_PATH:
            self._write(self._staging / MESSAGE_PATH, size, "message.txt", check_utf8=True)
            self.message_size = size
        elif path == META_PATH:
            self._read_meta(size)
        elif path.startswith(FILES_DIR) and "/" not in path[len(FILES_DIR) :]:
            self._attachment(path[len(FILES_DIR) :], size)
        else:
            raise ContainerError(
                f"The archive contains {_shown(name)}, which is not part of a submission; refused."
            )

    def _entry_name(self, header: tarformat.RawHeader, pax: dict[str, bytes]) -> str:
        if pax.get("hdrcharset", _UTF8_CHARSET) != _UTF8_CHARSET:
            raise ContainerError("The archive has names that are not UTF-8; refused.")
        if any(key.startswith("GNU.sparse.") for key in pax):
            raise ContainerError("The archive contains a sparse file; refused.")
        raw = pax.get("path", header.name)
        if len(raw) > self._limits.max_name_bytes:
            raise ContainerError(f"The archive has a name of {len(raw)} bytes; too long.")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContainerError(
                f"The archive has a name that is not UTF-8 ({raw[:60]!r}); refused."
            ) from None

    def _attachment(self, archive_name: str, size: int) -> None:
        stored_name = self._names.allocate(archive_name)
        if stored_name != archive_name:
            self.warnings.append(
                f"Attachment {_shown(archive_name)} saved as {_shown(stored_name)}."
            )
        self._write(
            self._staging / "files" / stored_name, size, f"attachment {_shown(stored_name)}"
        )
        self.files.append((stored_name, size))

    def _write(self, path: Path, size: int, what: str, check_utf8: bool = False) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")()
        is_utf8 = check_utf8
        with _create(path) as out:
            for chunk in self._data_chunks(size, what):
                out.write(chunk)
                is_utf8 = is_utf8 and _decodes(decoder, chunk)
        if check_utf8 and not (is_utf8 and _decodes(decoder, b"", final=True)):
            self.warnings.append(f"{what} is not valid UTF-8; it was saved as it is.")

    def _read_meta(self, size: int) -> None:
        if size > self._limits.max_meta_bytes:
            raise ArchiveTooLargeError(f"{META_PATH} is {size} bytes; too large.")
        body = b"".join(self._data_chunks(size, META_PATH))
        self.meta = _parse_meta(body, self.warnings)
        with _create(self._staging / META_PATH) as out:
            out.write(body)

    def _check_padding(self) -> None:
        """Reads to EOF: only zeros may follow, and no more than Padmé padding allows."""
        marker_end = self._offset + tarformat.BLOCK_SIZE  # the second zero block
        padded_length = padme_length(marker_end)
        while chunk := self._read(min(_CHUNK, padded_length + 1 - self._offset)):
            if chunk.count(0) != len(chunk):
                raise ContainerError("The archive is damaged: data after its end is not padding.")
            if self._offset > padded_length:
                raise ContainerError("The archive is damaged: it is longer than padding allows.")
        if self._offset < marker_end:
            raise ContainerError("The archive is truncated inside its end-of-archive marker.")
        if self._offset < padded_length:
            self.warnings.append("The archive's padding is shorter than the format prescribes.")


def _create(path: Path) -> BinaryIO:
    """A new file only the reviewer can read; never follows or replaces anything."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return open(os.open(path, flags, 0o600), "wb")


def _decodes(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool = False) -> bool:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError:
        return False
    return True


def _checked_path(name: str) -> str:
    """The archive path with ``.`` and empty components removed; refuses escapes."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise ContainerError(f"The archive contains an absolute path, {_shown(name)}; refused.")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts or ".." in re.split(r"[/\\]", name):
        raise ContainerError(f"The archive contains a path with '..', {_shown(name)}; refused.")
    if "\0" in name:
        raise ContainerError(f"The archive contains a name with a NUL byte, {_shown(name)}.")
    return "/".join(parts)


def _entry_size(header: tarformat.RawHeader, pax: dict[str, bytes]) -> int:
    if "size" not in pax:
        return header.size
    size = parse_ascii_decimal(pax["size"], max_digits=20)
    if size is None:
        raise ContainerError("The archive is damaged: a pax size is not a number.")
    return size


def _parse_meta(body: bytes, warnings: list[str]) -> dict[str, Any]:
    try:
        meta = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ContainerError(f"{META_PATH} is not valid JSON; refused.") from None
    if not isinstance(meta, dict):
        raise ContainerError(f"{META_PATH} is not a JSON object; refused.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ContainerError(
            f"This submission has format version {_shown(str(version), 20)}; this tiprelay reads "
            f"version {FORMAT_VERSION} only. A newer tiprelay may read it."
        )
    for key in ("language", "sealed_by", "day"):
        value = meta.get(key)
        if not _meta_field_is_valid(key, value):
            warnings.append(f"{META_PATH} has an unexpected {key}: {_shown(str(value), 40)}.")
    return meta


def _meta_field_is_valid(key: str, value: object) -> bool:
    if key == "sealed_by":
        return value in SEALED_BY_VALUES
    if not isinstance(value, str):
        return False
    if key == "day":
        return re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is not None
    return 0 < len(value) <= 35
