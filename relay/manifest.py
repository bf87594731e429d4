"""The bundle manifest: what a bundle folder holds, and each file's SHA-256.

A bundle is what travels on USB from the online machine to the offline one::

    BUNDLE_DIR/
      manifest.json        {"format": "tiprelay-bundle-1", "submissions": [...],
                            "replies": [...], "reply_slots": {...}}
      <id>.age             one stock age file per submission
      replies/<sha256>.age every reply ciphertext pulled (named by its SHA-256)
      recipients.json      the relay's recipient set at the last pull (compared, never used)
      outbox/, sent/, conflicted/   replies written offline (relay.outbox)

Each entry of ``submissions`` is ``{"id", "day", "size", "sha256", "sealed_by"}``
(the reviewer API's listing, as the server reported it), sorted by id. Each
entry of ``replies`` is ``{"tag", "day", "size", "sha256"}``, one per reply
ever pulled (kept when the relay replaces or deletes it); ``reply_slots`` maps
each tag to the SHA-256 of what the slot held at the last pull. The
manifest is rewritten atomically (temp file, fsync, rename, fsync folder) so a
crash leaves either the old or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relay.errors import TiprelayError
from relay.files import fsync_directory

MANIFEST_NAME = "manifest.json"
REPLIES_DIR = "replies"
BUNDLE_FORMAT = "tiprelay-bundle-1"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""About 300,000 entries: far beyond any real bundle, small enough to read at once."""

_ID = re.compile(r"[0-9a-f]{32}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
SEALED_BY = ("browser", "server")


class ManifestError(TiprelayError):
    """The bundle's manifest.json is missing or malformed; pull the bundle again."""


@dataclass(frozen=True)
class SubmissionInfo:
    """One stored submission as the reviewer API lists it and the manifest records it."""

    id: str
    day: str
    size: int
    sha256: str
    sealed_by: str

    @classmethod
    def from_json(cls, value: object) -> SubmissionInfo:
        """Validate one listing or manifest entry; raises ValueError with the reason."""
        if not isinstance(value, Mapping):
            raise ValueError("an entry is not an object")
        fields: dict[str, Any] = {name: value.get(name) for name in cls.__dataclass_fields__}
        if not isinstance(fields["id"], str) or not _ID.fullmatch(fields["id"]):
            raise ValueError("an entry has no valid id")
        if not isinstance(fields["day"], str) or not _DAY.fullmatch(fields["day"]):
            raise ValueError(f"entry {fields['id']} has no valid day")
        size = fields["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"entry {fields['id']} has no valid size")
        if not isinstance(fields["sha256"], str) or not _SHA256.fullmatch(fields["sha256"]):
            raise ValueError(f"entry {fields['id']} has no valid sha256")
        if fields["sealed_by"] not in SEALED_BY:
            raise ValueError(f"entry {fields['id']} has no valid sealed_by")
        return cls(**fields)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def file_name(self) -> str:
        """``<id>.age``, the file's name inside the bundle."""
        return f"{self.id}.age"


@dataclass(frozen=True)
class ReplyInfo:
    """One reply slot's content as the reviewer API lists it."""

    tag: str
    day: str
    size: int
    sha256: str

    @classmethod
    def from_json(cls, value: object) -> ReplyInfo:
        """Validate one listing or manifest entry; raises ValueError with the reason."""
        if not isinstance(value, Mapping):
            raise ValueError("a reply entry is not an object")
        fields: dict[str, Any] = {name: value.get(name) for name in cls.__dataclass_fields__}
        if not isinstance(fields["tag"], str) or not _SHA256.fullmatch(fields["tag"]):
            raise ValueError("a reply entry has no valid tag")
        if not isinstance(fields["day"], str) or not _DAY.fullmatch(fields["day"]):
            raise ValueError("a reply entry has no valid day")
        size = fields["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("a reply entry has no valid size")
        if not isinstance(fields["sha256"], str) or not _SHA256.fullmatch(fields["sha256"]):
            raise ValueError("a reply entry has no valid sha256")
        return cls(**fields)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def file_name(self) -> str:
        """``replies/<sha256>.age``, relative to the bundle."""
        return f"{REPLIES_DIR}/{self.sha256}.age"


@dataclass
class ReplyState:
    """The replies a bundle holds, and what each slot held at the last pull."""

    pulled: dict[str, ReplyInfo] = field(default_factory=dict)
    """By SHA-256: every reply ciphertext pulled so far."""
    slots: dict[str, str] = field(default_factory=dict)
    """Tag -> SHA-256 of the slot's content at the last pull (absent: empty)."""


def _read_document(bundle_dir: Path) -> dict[str, Any] | None:
    path = bundle_dir / MANIFEST_NAME
    try:
        with path.open("rb") as manifest_file:
            raw = manifest_file.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"Cannot read {path}: {exc.strerror}.") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path} is larger than any real manifest; it is not one.")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ManifestError(f"{path} is not valid JSON; the bundle is damaged.") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise ManifestError(f"{path} is not a tiprelay bundle manifest ({BUNDLE_FORMAT}).")
    return document


def read_manifest(bundle_dir: Path) -> dict[str, SubmissionInfo]:
    """The manifest's entries by id; an empty dict when the bundle has none yet."""
    path = bundle_dir / MANIFEST_NAME
    document = _read_document(bundle_dir)
    if document is None:
        return {}
    entries = document.get("submissions")
    if not isinstance(entries, list):
        raise ManifestError(f"{path} has no list of submissions.")
    result: dict[str, SubmissionInfo] = {}
    for entry in entries:
        try:
            info = SubmissionInfo.from_json(entry)
        except ValueError as exc:
            raise ManifestError(f"{path} is damaged: {exc}.") from None
        result[info.id] = info
    return result


def read_reply_state(bundle_dir: Path) -> ReplyState:
    """The manifest's replies and slots; empty for a bundle without any."""
    path = bundle_dir / MANIFEST_NAME
    document = _read_document(bundle_dir) or {}
    entries = document.get("replies", [])
    slots = document.get("reply_slots", {})
    if not isinstance(entries, list) or not isinstance(slots, dict):
        raise ManifestError(f"{path} is damaged: its replies are not a list and a map.")
    state = ReplyState()
    try:
        for entry in entries:
            info = ReplyInfo.from_json(entry)
            state.pulled[info.sha256] = info
    except ValueError as exc:
        raise ManifestError(f"{path} is damaged: {exc}.") from None
    for tag, digest in slots.items():
        if not (_SHA256.fullmatch(tag) and isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise ManifestError(f"{path} is damaged: a reply slot is not a tag and a hash.")
        state.slots[tag] = digest
    return state


def write_manifest(
    bundle_dir: Path, entries: Iterable[SubmissionInfo], replies: ReplyState | None = None
) -> None:
    """Replace the manifest atomically with ``entries`` (sorted by id) and ``replies``
    (None: keep the replies the manifest holds now)."""
    if replies is None:
        replies = read_reply_state(bundle_dir)
    document = {
        "format": BUNDLE_FORMAT,
        "submissions": [entry.to_json() for entry in sorted(entries, key=lambda e: e.id)],
        "replies": [info.to_json() for _, info in sorted(replies.pulled.items())],
        "reply_slots": dict(sorted(replies.slots.items())),
    }
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_file_atomically(bundle_dir / MANIFEST_NAME, data)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``... for summaries a person reads."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
