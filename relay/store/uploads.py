"""Resumable (tus) uploads in progress: one row and one ``uploads/<id>.part`` file each.

A finished upload becomes a submission by a rename into blobs/ and one
transaction that deletes its upload row and inserts its submission row.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from relay.errors import LimitExceededError, StorageError, UploadNotFoundError, UploadOffsetError
from relay.files import file_sha256, fsync_directory
from relay.store.blobs import (
    HOUR_FORMAT,
    blur_file_times,
    current_hour,
    database_errors,
    disk_errors,
    fsync_file,
    is_valid_id,
    new_id,
    storage_error,
    today,
    utc_now,
)
from relay.store.database import StoreDatabase
from relay.store.submissions import (
    STATE_STORED,
    SubmissionRecord,
    Submissions,
    check_sealed_by,
    insert_submission_row,
)

PART_NAME = re.compile(r"([0-9a-f]{32})\.part")
_UPLOAD_LOCK_STRIPES = 64


@dataclass(frozen=True)
class UploadRecord:
    """A resumable upload in progress: ``uploads/<id>.part`` holds ``offset`` bytes."""

    id: str
    length: int  # declared total length
    offset: int  # bytes received and fsynced
    expires_day_hour: str  # "YYYY-MM-DDTHH", UTC: expired from this hour on


def upload_record(row: dict[str, Any]) -> UploadRecord:
    """A row of ``uploads`` as a record."""
    return UploadRecord(
        id=row["id"],
        length=row["length"],
        offset=row["offset"],
        expires_day_hour=row["expires_day_hour"],
    )


class Uploads:
    """The uploads' rows and ``uploads/`` folder; finished ones go to ``submissions``."""

    def __init__(
        self,
        database: StoreDatabase,
        uploads_dir: Path,
        submissions: Submissions,
        *,
        expiry_hours: int,
    ) -> None:
        self.database = database
        self.uploads_dir = uploads_dir
        self.submissions = submissions
        self.expiry_hours = expiry_hours
        # Striped, so that ids sent by clients cannot grow a table of locks.
        self._locks = tuple(threading.Lock() for _ in range(_UPLOAD_LOCK_STRIPES))

    def lock_for(self, upload_id: str) -> threading.Lock:
        """The lock serialising changes to one upload (shared with a few others)."""
        return self._locks[hash(upload_id) % _UPLOAD_LOCK_STRIPES]

    def create(self, length: int) -> UploadRecord:
        """Start an upload of ``length`` bytes: an empty .part file, then its row."""
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise ValueError("an upload's length must be a positive number of bytes")
        this_hour = utc_now().replace(minute=0, second=0, microsecond=0)
        # Rounded up to the next hour: the upload lives at least the configured time.
        expires = (this_hour + timedelta(hours=self.expiry_hours + 1)).strftime(HOUR_FORMAT)
        record = UploadRecord(new_id(), length, 0, expires)
        part = self.path(record.id)
        with disk_errors():
            os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            fsync_directory(self.uploads_dir)
        try:
            with self.database.connection() as db, database_errors(
                "The upload could not be recorded."
            ):
                db.execute(
                    'INSERT INTO uploads (id, length, "offset", expires_day_hour) '
                    "VALUES (?, ?, 0, ?)",
                    [record.id, length, expires],
                )
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return record

    def path(self, upload_id: str) -> Path:
        """Where an upload's received bytes are; ValueError for anything but a valid id."""
        if not is_valid_id(upload_id):
            raise ValueError("not an upload id")
        return self.uploads_dir / f"{upload_id}.part"

    def get(self, upload_id: str) -> UploadRecord | None:
        """The upload's row; None if there is none, the id is malformed, or it has expired."""
        if not is_valid_id(upload_id):
            return None
        with self.database.connection() as db:
            rows = list(db.query("SELECT * FROM uploads WHERE id = ?", [upload_id]))
        if not rows:
            return None
        record = upload_record(rows[0])
        return None if record.expires_day_hour <= current_hour() else record

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (which must be the stored offset), fsync; the new offset.

        Raises UploadNotFoundError, UploadOffsetError (its ``expected`` is the
        stored offset) or LimitExceededError (past the declared length). When it
        returns, the bytes survive a crash.
        """
        with self.lock_for(upload_id):
            record = self.get(upload_id)
            if record is None:
                raise UploadNotFoundError()
            if offset != record.offset:
                raise UploadOffsetError(expected=record.offset)
            new_offset = offset + len(data)
            if new_offset > record.length:
                raise LimitExceededError("The upload is longer than the length it declared.")
            if not data:
                return offset
            with disk_errors(), self.path(upload_id).open("r+b") as file:
                file.seek(offset)
                file.write(data)
                file.truncate()  # drop anything a crash left beyond the offset
                file.flush()
                os.fsync(file.fileno())
            with self.database.connection() as db, database_errors(
                "The upload could not be recorded."
            ):
                db.execute('UPDATE uploads SET "offset" = ? WHERE id = ?', [new_offset, upload_id])
            return new_offset

    def finish(self, upload_id: str, sealed_by: str) -> SubmissionRecord:
        """Turn a complete upload into a submission (rename into blobs/, row), durably.

        Validate the content (e.g. the age header) before calling this.
        Acknowledge the upload's last bytes only after it returns.
        """
        check_sealed_by(sealed_by)
        with self.lock_for(upload_id):
            record = self.get(upload_id)
            if record is None:
                raise UploadNotFoundError()
            if record.offset != record.length:
                raise StorageError(
                    f"The upload is incomplete: {record.offset} of {record.length} bytes."
                )
            part = self.path(upload_id)
            with disk_errors():
                sha256 = file_sha256(part)
                fsync_file(part)
            return self._commit(part, record, sha256, sealed_by)

    def _commit(
        self, part: Path, upload: UploadRecord, sha256: str, sealed_by: str
    ) -> SubmissionRecord:
        record = SubmissionRecord(new_id(), today(), upload.length, sha256, sealed_by, STATE_STORED)
        blob = self.submissions.blob_path(record.id)
        with disk_errors():
            blur_file_times(part, record.day)
            os.replace(part, blob)
            fsync_directory(self.submissions.blobs_dir)
            fsync_directory(self.uploads_dir)
        try:
            with self.database.connection() as db, db.atomic():
                db.execute("DELETE FROM uploads WHERE id = ?", [upload.id])
                insert_submission_row(db, record)
        except BaseException as exc:
            # The row is still there (rolled back): put its bytes back beside it, so
            # the upload can still be finished, rather than lose what was sent.
            try:
                os.replace(blob, part)
            except OSError:
                blob.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.Error):
                raise storage_error(exc, "The submission could not be recorded.") from exc
            raise
        return record

    def delete(self, upload_id: str) -> bool:
        """Abandon an upload (row, then file); False if there was none."""
        if not is_valid_id(upload_id):
            return False
        with self.lock_for(upload_id):
            return self._delete_unlocked(upload_id)

    def _delete_unlocked(self, upload_id: str) -> bool:
        with self.database.connection() as db:
            deleted = db.execute("DELETE FROM uploads WHERE id = ?", [upload_id]).rowcount
        self.path(upload_id).unlink(missing_ok=True)
        return bool(deleted)

    def open_count(self) -> int:
        """How many unexpired uploads there are."""
        with self.database.connection() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM uploads WHERE expires_day_hour > ?", [current_hour()]
            ).fetchone()
        return int(row[0])

    def list_open(self) -> Sequence[tuple[str, int, int]]:
        """Unexpired uploads: (id, length, offset) of each."""
        with self.database.connection() as db:
            rows = db.execute(
                'SELECT id, length, "offset" FROM uploads WHERE expires_day_hour > ?',
                [current_hour()],
            ).fetchall()
        return [(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    def purge_expired(self) -> int:
        """Delete uploads past their expiry hour; how many."""
        with self.database.connection() as db:
            ids = [
                row["id"]
                for row in db.query(
                    "SELECT id FROM uploads WHERE expires_day_hour <= ?", [current_hour()]
                )
            ]
        for upload_id in ids:
            with self.lock_for(upload_id):
                self._delete_unlocked(upload_id)
        if ids:
            fsync_directory(self.uploads_dir)
        return len(ids)
