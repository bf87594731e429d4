"""Submissions: one row and one ciphertext file ``blobs/<id>.age`` each.

The order of writes is what makes an acknowledged submission durable and a
crash harmless: the blob is written to tmp/, fsynced, renamed into blobs/,
the folder is fsynced, and only then is its row inserted. A row therefore
never points to a missing blob; a blob without a row is a submission that was
never acknowledged, and recovery removes it. Deletion runs the other way
(row first, then blob).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from sqlite_utils import Database

from relay.errors import StorageError
from relay.file_times import open_without_atime
from relay.files import fsync_directory
from relay.store.blobs import (
    TemporaryBlob,
    blur_file_times,
    is_valid_id,
    new_id,
    storage_error,
    today,
)
from relay.store.database import StoreDatabase

SEALED_BY = ("server", "browser")
STATE_STORED = "stored"
MAX_LIST_LIMIT = 1000
BLOB_NAME = re.compile(r"([0-9a-f]{32})\.age")


@dataclass(frozen=True)
class SubmissionRecord:
    """A stored submission: its ciphertext is ``blobs/<id>.age``."""

    id: str  # 32 hex digits, random
    day: str  # "YYYY-MM-DD", UTC; never a time of day
    size: int  # bytes of ciphertext
    sha256: str  # hex digest of the ciphertext
    sealed_by: str  # who encrypted it: "browser" (the source's) or "server"
    state: str  # "stored"


def check_sealed_by(sealed_by: str) -> None:
    """ValueError unless ``sealed_by`` is "server" or "browser"."""
    if sealed_by not in SEALED_BY:
        raise ValueError(f"sealed_by must be 'server' or 'browser', not {sealed_by!r}")


def insert_submission_row(db: Database, record: SubmissionRecord) -> None:
    """Insert a submission's row (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO submissions (id, day, size, sha256, sealed_by, state) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [record.id, record.day, record.size, record.sha256, record.sealed_by, record.state],
    )


def submission_record(row: dict[str, Any]) -> SubmissionRecord:
    """A row of ``submissions`` as a record."""
    return SubmissionRecord(
        id=row["id"],
        day=row["day"],
        size=row["size"],
        sha256=row["sha256"],
        sealed_by=row["sealed_by"],
        state=row["state"],
    )


def cutoff_day(days: int) -> str:
    """The first day still kept by a retention of ``days`` days."""
    if days < 0:
        raise ValueError("days must not be negative")
    return (date.fromisoformat(today()) - timedelta(days=days)).isoformat()


@dataclass
class _PendingCommit:
    """One submission waiting for its group commit (see Submissions.commit_file)."""

    record: SubmissionRecord
    temporary: Path
    blob: Path
    done: bool = False
    error: StorageError | None = None

    def finish(self, error: StorageError | None) -> None:
        self.error = error
        self.done = True


class BlobWriter:
    """Writes one submission's ciphertext; ``commit`` makes it durable and gives it a row.

    Use it in a ``with`` block: leaving the block without ``commit`` removes the
    temporary file, so a refused or broken submission leaves nothing behind.
    """

    def __init__(self, submissions: Submissions) -> None:
        self._submissions = submissions
        self._blob = TemporaryBlob(submissions.tmp_dir)

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._blob.size

    @property
    def path(self) -> Path:
        """The temporary file in tmp/ being written."""
        return self._blob.path

    def write(self, data: bytes) -> None:
        """Append ciphertext."""
        self._blob.write(data)

    def commit(self, sealed_by: str) -> SubmissionRecord:
        """fsync, rename into blobs/, fsync the folder, insert the row; then it is durable."""
        check_sealed_by(sealed_by)
        if not self._blob.is_open:
            raise StorageError("This submission is already committed or abandoned.")
        path, size, sha256 = self._blob.finish()
        return self._submissions.commit_file(path, size, sha256, sealed_by)

    def abort(self) -> None:
        """Discard what was written."""
        self._blob.abort()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class Submissions:
    """The submissions' rows and ``blobs/`` folder."""

    def __init__(self, database: StoreDatabase, blobs_dir: Path, tmp_dir: Path) -> None:
        self.database = database
        self.blobs_dir = blobs_dir
        self.tmp_dir = tmp_dir
        self._commit_turn = threading.Condition()
        self._commit_queue: list[_PendingCommit] = []
        self._committing = False

    def blob_writer(self) -> BlobWriter:
        """A writer for one new submission (a context manager; see BlobWriter)."""
        if not self.database.is_open:
            raise StorageError("The store is not open.")
        return BlobWriter(self)

    def commit_file(
        self, temporary: Path, size: int, sha256: str, sealed_by: str
    ) -> SubmissionRecord:
        """Move an fsynced file into blobs/ and insert its row, in the durable order.

        Group commit: a commit that arrives while another is being written
        waits, then goes out with every other that queued meanwhile, sharing
        one folder fsync and one SQLite transaction. Each file was fsynced by
        its own writer; nothing returns before its rename, the folder fsync and
        its row are all done. Disk sync latency, not CPU, bounds small tips.
        """
        record = SubmissionRecord(new_id(), today(), size, sha256, sealed_by, STATE_STORED)
        pending = _PendingCommit(record, temporary, self.blob_path(record.id))
        with self._commit_turn:
            self._commit_queue.append(pending)
            while self._committing and not pending.done:
                self._commit_turn.wait()
            if not pending.done:
                batch, self._commit_queue = self._commit_queue, []
                self._committing = True
        if not pending.done:
            try:
                self._commit_batch(batch)
            finally:
                with self._commit_turn:
                    self._committing = False
                    self._commit_turn.notify_all()
        if pending.error is not None:
            raise pending.error
        return record

    def _commit_batch(self, batch: list[_PendingCommit]) -> None:
        """Rename every file, fsync blobs/ once, insert every row in one transaction."""
        renamed: list[_PendingCommit] = []
        for pending in batch:
            try:
                blur_file_times(pending.temporary, pending.record.day)
                os.replace(pending.temporary, pending.blob)
            except OSError as exc:
                pending.finish(storage_error(exc))
                pending.temporary.unlink(missing_ok=True)
            else:
                renamed.append(pending)
        if not renamed:
            return
        try:
            fsync_directory(self.blobs_dir)
            with self.database.connection() as db, db.atomic():
                db.conn.executemany(
                    "INSERT INTO submissions (id, day, size, sha256, sealed_by, state) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        [r.id, r.day, r.size, r.sha256, r.sealed_by, r.state]
                        for r in (p.record for p in renamed)
                    ],
                )
        except BaseException as exc:
            for pending in renamed:
                pending.blob.unlink(missing_ok=True)
                pending.finish(
                    storage_error(
                        exc,
                        "The submission could not be recorded."
                        if isinstance(exc, sqlite3.Error)
                        else None,
                    )
                )
            if not isinstance(exc, Exception):
                raise
            return
        for pending in renamed:
            pending.finish(None)

    def blob_path(self, submission_id: str) -> Path:
        """Where a submission's ciphertext is; ValueError for anything but a valid id."""
        if not is_valid_id(submission_id):
            raise ValueError("not a submission id")
        return self.blobs_dir / f"{submission_id}.age"

    def get(self, submission_id: str) -> SubmissionRecord | None:
        """The submission's row, or None (also for a malformed id)."""
        if not is_valid_id(submission_id):
            return None
        with self.database.connection() as db:
            rows = list(db.query("SELECT * FROM submissions WHERE id = ?", [submission_id]))
        return submission_record(rows[0]) if rows else None

    def list(self, after: str | None = None, limit: int = 100) -> list[SubmissionRecord]:
        """Up to ``limit`` submissions ordered by id, those after id ``after`` (a cursor)."""
        if after is not None and not is_valid_id(after):
            raise ValueError("after must be a submission id")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        with self.database.connection() as db:
            rows = list(
                db.query(
                    "SELECT * FROM submissions WHERE id > ? ORDER BY id LIMIT ?",
                    [after or "", limit],
                )
            )
        return [submission_record(row) for row in rows]

    def open_blob(self, submission_id: str) -> BinaryIO:
        """The ciphertext, opened for reading; FileNotFoundError if there is no such submission."""
        if self.get(submission_id) is None:
            raise FileNotFoundError("no such submission")
        return open_without_atime(self.blob_path(submission_id))

    def delete(self, submission_id: str) -> bool:
        """Delete row, then ciphertext, durably; False if there was no such submission."""
        if not is_valid_id(submission_id):
            return False
        with self.database.connection() as db:
            deleted = db.execute("DELETE FROM submissions WHERE id = ?", [submission_id]).rowcount
        if not deleted:
            return False
        self.blob_path(submission_id).unlink(missing_ok=True)
        fsync_directory(self.blobs_dir)
        return True

    def count_arrivals(self, enabled: bool) -> None:
        """Keep the arrival counter (``enabled``) or drop it, and the number it held."""
        with self.database.connection() as db, db.atomic():
            if enabled:
                db.execute("INSERT OR IGNORE INTO arrival_counter (one, arrived) VALUES (1, 0)")
            else:
                db.execute("DELETE FROM arrival_counter")

    def take_digest_counts(self) -> tuple[int, int]:
        """(submissions stored now, submissions stored since the last call), and reset the latter.

        One transaction, so a submission stored meanwhile is counted in this
        digest or the next, never in none or both.
        """
        with self.database.connection() as db, db.atomic():
            waiting = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
            row = db.execute("SELECT arrived FROM arrival_counter").fetchone()
            db.execute("UPDATE arrival_counter SET arrived = 0")
        return int(waiting), int(row[0]) if row is not None else 0

    def purge_older_than(self, days: int) -> int:
        """Delete submissions whose day is more than ``days`` days ago; how many."""
        cutoff = cutoff_day(days)
        with self.database.connection() as db, db.atomic():
            ids = [r["id"] for r in db.query("SELECT id FROM submissions WHERE day < ?", [cutoff])]
            db.execute("DELETE FROM submissions WHERE day < ?", [cutoff])
        for submission_id in ids:
            self.blob_path(submission_id).unlink(missing_ok=True)
        if ids:
            fsync_directory(self.blobs_dir)
        return len(ids)
