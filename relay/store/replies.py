"""Reply slots: the team's replies, each in a slot named only by its tag.

A slot is one row ``(tag, blob, day, size, sha256, delete_token_sha256)`` and
one age file ``replies/<blob>.age``. The tag (32 bytes, 64 hex digits) is
opaque here: the protocol derives it from a conversation's slot key, and the
store never learns which slots belong together; no column links rows. ``blob``
is a random file name, so the folder's listing shows no tag. ``sha256`` is the
hash of the age file the slot holds: a reviewer replaces a slot only by naming
that hash (compare-and-swap), so two reviewers replying at once cannot
silently overwrite each other. The delete token itself is never stored: a
source proves it may delete by sending the token whose SHA-256 is kept.

Writes keep the submissions' durable order: the file is fsynced in tmp/,
renamed into replies/, the folder fsynced, then the row is written; a
replaced or deleted slot's old file is removed after its row changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from relay.errors import ReplySlotChangedError, StorageError
from relay.file_times import open_without_atime
from relay.files import fsync_directory
from relay.store.blobs import TemporaryBlob, blur_file_times, disk_errors, new_id, today
from relay.store.database import StoreDatabase
from relay.store.submissions import MAX_LIST_LIMIT, cutoff_day

TAG_BYTES = 32
DELETE_TOKEN_BYTES = 32
REPLY_BLOB_NAME = re.compile(r"([0-9a-f]{32})\.age")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_valid_tag(value: object) -> bool:
    """True for a slot tag: 64 lower-case hex digits (32 bytes)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def is_valid_sha256(value: object) -> bool:
    """True for a hex SHA-256: 64 lower-case hex digits."""
    return is_valid_tag(value)


def delete_token_hash(token: bytes) -> str:
    """The hex SHA-256 the store keeps for a slot's delete token."""
    return hashlib.sha256(token).hexdigest()


@dataclass(frozen=True)
class ReplySlot:
    """A filled reply slot, as reviewers see it (the delete token's hash stays inside)."""

    tag: str  # 64 hex digits
    day: str  # "YYYY-MM-DD", UTC: the day the reply was written into the slot
    size: int  # bytes of the age file (padded by its writer)
    sha256: str  # hex SHA-256 of the age file: the hash the slot holds


def _reply_slot(row: dict[str, Any]) -> ReplySlot:
    return ReplySlot(tag=row["tag"], day=row["day"], size=row["size"], sha256=row["sha256"])


class ReplySlots:
    """The reply slots' rows and ``replies/`` folder."""

    def __init__(self, database: StoreDatabase, replies_dir: Path, tmp_dir: Path) -> None:
        self.database = database
        self.replies_dir = replies_dir
        self.tmp_dir = tmp_dir
        # One writer at a time: a compare-and-swap reads the slot, then replaces it.
        self._write_lock = threading.Lock()

    def temporary_blob(self) -> TemporaryBlob:
        """A file in tmp/ to stream a reply into before ``put`` (a context manager)."""
        if not self.database.is_open:
            raise StorageError("The store is not open.")
        return TemporaryBlob(self.tmp_dir)

    def blob_path(self, blob: str) -> Path:
        """Where the file named ``blob`` (a random id, never a tag) is."""
        return self.replies_dir / f"{blob}.age"

    def put(
        self,
        tag: str,
        expected_sha256: str | None,
        delete_token_sha256: str,
        written: TemporaryBlob,
    ) -> ReplySlot:
        """Fill slot ``tag`` with the finished file, if it holds ``expected_sha256`` now.

        ``expected_sha256`` is None for "the slot must be empty". Raises
        ReplySlotChangedError otherwise, and the slot keeps what it held.
        When this returns, the reply is durable.
        """
        if not is_valid_tag(tag):
            raise ValueError("a slot tag is 64 lower-case hex digits")
        if expected_sha256 is not None and not is_valid_sha256(expected_sha256):
            raise ValueError("the expected hash is 64 lower-case hex digits")
        if not is_valid_sha256(delete_token_sha256):
            raise ValueError("a delete token hash is 64 lower-case hex digits")
        path, size, sha256 = written.finish()
        slot = ReplySlot(tag=tag, day=today(), size=size, sha256=sha256)
        blob = new_id()
        target = self.blob_path(blob)
        with self._write_lock:
            old_blob = self._current_blob_if(tag, expected_sha256)
            with disk_errors():
                blur_file_times(path, slot.day)
                os.replace(path, target)
                fsync_directory(self.replies_dir)
            try:
                with self.database.connection() as db, db.atomic():
                    db.execute("DELETE FROM reply_slots WHERE tag = ?", [tag])
                    db.execute(
                        "INSERT INTO reply_slots "
                        "(tag, blob, day, size, sha256, delete_token_sha256) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [tag, blob, slot.day, size, sha256, delete_token_sha256],
                    )
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            if old_blob is not None:
                self._remove_blob(old_blob)
        return slot

    def _current_blob_if(self, tag: str, expected_sha256: str | None) -> str | None:
        """The slot's current file name, after checking it holds ``expected_sha256``."""
        with self.database.connection() as db:
            rows = list(db.query("SELECT blob, sha256 FROM reply_slots WHERE tag = ?", [tag]))
        current = rows[0] if rows else None
        if expected_sha256 is None:
            if current is not None:
                raise ReplySlotChangedError()
            return None
        if current is None or not hmac.compare_digest(current["sha256"], expected_sha256):
            raise ReplySlotChangedError()
        return str(current["blob"])

    def get(self, tag: str) -> ReplySlot | None:
        """The slot, or None if it is empty (also for a malformed tag)."""
        if not is_valid_tag(tag):
            return None
        with self.database.connection() as db:
            rows = list(db.query("SELECT * FROM reply_slots WHERE tag = ?", [tag]))
        return _reply_slot(rows[0]) if rows else None

    def sizes(self, tags: list[str]) -> list[int | None]:
        """For each tag in order, the size of the reply it holds, or None when empty."""
        wanted = [tag for tag in tags if is_valid_tag(tag)]
        if not wanted:
            return [None] * len(tags)
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT tag, size FROM reply_slots WHERE tag IN (SELECT value FROM json_each(?))",
                [json.dumps(wanted)],
            ).fetchall()
        size_by_tag = {str(row[0]): int(row[1]) for row in rows}
        return [size_by_tag.get(tag) for tag in tags]

    def list(self, after: str | None = None, limit: int = 100) -> list[ReplySlot]:
        """Up to ``limit`` filled slots ordered by tag, those after tag ``after`` (a cursor)."""
        if after is not None and not is_valid_tag(after):
            raise ValueError("after must be a slot tag")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        with self.database.connection() as db:
            rows = list(
                db.query(
                    "SELECT * FROM reply_slots WHERE tag > ? ORDER BY tag LIMIT ?",
                    [after or "", limit],
                )
            )
        return [_reply_slot(row) for row in rows]

    def open_blob(self, tag: str) -> BinaryIO:
        """The slot's age file, opened with O_NOATIME; FileNotFoundError if the slot is empty."""
        if not is_valid_tag(tag):
            raise FileNotFoundError("no such reply")
        with self.database.connection() as db:
            rows = list(db.query("SELECT blob FROM reply_slots WHERE tag = ?", [tag]))
        if not rows:
            raise FileNotFoundError("no such reply")
        return open_without_atime(self.blob_path(str(rows[0]["blob"])))

    def delete(self, tag: str) -> bool:
        """Empty the slot (row, then file), durably; False if it was empty."""
        if not is_valid_tag(tag):
            return False
        with self._write_lock:
            return self._delete_where(tag, None)

    def delete_with_token(self, tag: str, token: bytes) -> bool:
        """Empty the slot if ``token`` is its delete token; False otherwise (or if empty)."""
        if not is_valid_tag(tag) or len(token) != DELETE_TOKEN_BYTES:
            return False
        with self._write_lock:
            return self._delete_where(tag, delete_token_hash(token))

    def _delete_where(self, tag: str, token_sha256: str | None) -> bool:
        with self.database.connection() as db, db.atomic():
            rows = list(
                db.query("SELECT blob, delete_token_sha256 FROM reply_slots WHERE tag = ?", [tag])
            )
            if not rows:
                return False
            if token_sha256 is not None and not hmac.compare_digest(
                rows[0]["delete_token_sha256"], token_sha256
            ):
                return False
            db.execute("DELETE FROM reply_slots WHERE tag = ?", [tag])
        self._remove_blob(str(rows[0]["blob"]))
        return True

    def _remove_blob(self, blob: str) -> None:
        self.blob_path(blob).unlink(missing_ok=True)
        fsync_directory(self.replies_dir)

    def purge_older_than(self, days: int) -> int:
        """Empty the slots whose day is more than ``days`` days ago; how many."""
        cutoff = cutoff_day(days)
        with self._write_lock:
            with self.database.connection() as db, db.atomic():
                blobs = [
                    str(row["blob"])
                    for row in db.query("SELECT blob FROM reply_slots WHERE day < ?", [cutoff])
                ]
                db.execute("DELETE FROM reply_slots WHERE day < ?", [cutoff])
            for blob in blobs:
                self.blob_path(blob).unlink(missing_ok=True)
            if blobs:
                fsync_directory(self.replies_dir)
        return len(blobs)
