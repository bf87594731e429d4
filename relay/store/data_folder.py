"""``SubmissionStore``: one data folder, opened once, with its parts.

It owns the folder (creation, modes, the lock that allows one relay per
folder), the shared database connection, the periodic file-times blur and the
health check, and hands every other job to its parts: ``submissions``,
``uploads`` and ``replies``. The methods below the parts are the store's
public interface, kept short so that callers need not know which part does what.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlite_utils import Database

from relay.errors import StorageError
from relay.file_times import restamp_to_midnight
from relay.log import get_logger
from relay.store.blobs import TemporaryBlob, new_id
from relay.store.database import DB_NAME, StoreDatabase
from relay.store.migrations import MIGRATIONS, run_migrations
from relay.store.recovery import recover
from relay.store.replies import ReplySlot, ReplySlots
from relay.store.submissions import BlobWriter, SubmissionRecord, Submissions
from relay.store.uploads import UploadRecord, Uploads

_log = get_logger("relay.store")

if TYPE_CHECKING:
    from relay.config import Config


class SubmissionStore:
    """Rows in SQLite and ciphertext files in ``data_dir``; see the package docstring."""

    def __init__(
        self, data_dir: Path, *, busy_timeout_ms: int = 5000, upload_expiry_hours: int = 24
    ) -> None:
        self.data_dir = data_dir
        self.blobs_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        self.uploads_dir = data_dir / "uploads"
        self.replies_dir = data_dir / "replies"
        self.db_path = data_dir / DB_NAME
        self.busy_timeout_ms = busy_timeout_ms
        self.upload_expiry_hours = upload_expiry_hours
        self.database = StoreDatabase(self.db_path, busy_timeout_ms=busy_timeout_ms)
        self.submissions = Submissions(self.database, self.blobs_dir, self.tmp_dir)
        self.uploads = Uploads(
            self.database, self.uploads_dir, self.submissions, expiry_hours=upload_expiry_hours
        )
        self.replies = ReplySlots(self.database, self.replies_dir, self.tmp_dir)
        self._lock_fd: int | None = None

    @classmethod
    def from_config(cls, config: Config) -> SubmissionStore:
        """A store on ``config.data_dir`` with the configured timeouts and expiry."""
        return cls(
            config.data_dir,
            busy_timeout_ms=config.sqlite_busy_timeout_ms,
            upload_expiry_hours=config.upload_expiry_hours,
        )

    @property
    def _folders(self) -> tuple[Path, ...]:
        return (self.blobs_dir, self.tmp_dir, self.uploads_dir, self.replies_dir)

    # --- life cycle ---

    def open(self) -> None:
        """Create the folders, take the data folder's lock, migrate, and recover from a crash."""
        if self.database.is_open:
            return
        try:
            self._make_folders()
            self._take_lock()
            db = self.database.open()
            applied = run_migrations(db)
            if applied and len(applied) < len(MIGRATIONS):
                # An upgrade changed the schema of an existing data folder: the
                # operator's guide says what that means for a rollback.
                _log.info("store.migrated", count=len(applied))
            recover(self.tmp_dir, self.submissions, self.uploads, self.replies)
        except sqlite3.Error as exc:
            self.close()
            raise StorageError(f"The database {self.db_path} cannot be used: {exc}") from None
        except OSError as exc:
            self.close()
            raise StorageError(
                f"The data folder {self.data_dir} cannot be used: {exc.strerror or exc}"
            ) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database and release the data folder."""
        self.database.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SubmissionStore:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _make_folders(self) -> None:
        for folder in (self.data_dir, *self._folders):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if folder.stat().st_mode & 0o777 != 0o700:
                folder.chmod(0o700)
        device = self.data_dir.stat().st_dev
        for folder in self._folders:
            # A rename is atomic only within one file system.
            if folder.stat().st_dev != device:
                raise StorageError(f"{folder} must be on the same file system as {self.data_dir}.")

    def _take_lock(self) -> None:
        fd = os.open(self.data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError(
                f"The data folder {self.data_dir} is in use by another tiprelay process."
            ) from None
        self._lock_fd = fd

    def sqlite(self) -> Database:
        """The open database itself, for checks of its pragmas and pages (tests, tools)."""
        with self.database.connection() as db:
            return db

    # --- submissions ---

    def blob_writer(self) -> BlobWriter:
        """A writer for one new submission (a context manager; see BlobWriter)."""
        return self.submissions.blob_writer()

    def blob_path(self, submission_id: str) -> Path:
        """Where a submission's ciphertext is; ValueError for anything but a valid id."""
        return self.submissions.blob_path(submission_id)

    def get(self, submission_id: str) -> SubmissionRecord | None:
        """The submission's row, or None (also for a malformed id)."""
        return self.submissions.get(submission_id)

    def list(self, after: str | None = None, limit: int = 100) -> list[SubmissionRecord]:
        """Up to ``limit`` submissions ordered by id, those after id ``after`` (a cursor)."""
        return self.submissions.list(after, limit)

    def open_blob(self, submission_id: str) -> BinaryIO:
        """The ciphertext, opened for reading; FileNotFoundError if there is no such submission."""
        return self.submissions.open_blob(submission_id)

    def delete(self, submission_id: str) -> bool:
        """Delete row, then ciphertext, durably; False if there was no such submission."""
        return self.submissions.delete(submission_id)

    def purge_older_than(self, days: int) -> int:
        """Delete submissions whose day is more than ``days`` days ago; how many."""
        return self.submissions.purge_older_than(days)

    def count_arrivals(self, enabled: bool) -> None:
        """Count new submissions for the team's digest (``enabled``), or keep no count."""
        self.submissions.count_arrivals(enabled)

    def take_digest_counts(self) -> tuple[int, int]:
        """(submissions waiting, submissions stored since the last digest); resets the latter."""
        return self.submissions.take_digest_counts()

    # --- resumable uploads ---

    def create_upload(self, length: int) -> UploadRecord:
        """Start an upload of ``length`` bytes: an empty .part file, then its row."""
        return self.uploads.create(length)

    def upload_path(self, upload_id: str) -> Path:
        """Where an upload's received bytes are; ValueError for anything but a valid id."""
        return self.uploads.path(upload_id)

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        """The upload's row; None if there is none, the id is malformed, or it has expired."""
        return self.uploads.get(upload_id)

    def append_upload(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``, fsync; the new offset (see Uploads.append)."""
        return self.uploads.append(upload_id, offset, data)

    def finish_upload(self, upload_id: str, sealed_by: str) -> SubmissionRecord:
        """Turn a complete upload into a submission, durably (see Uploads.finish)."""
        return self.uploads.finish(upload_id, sealed_by)

    def delete_upload(self, upload_id: str) -> bool:
        """Abandon an upload (row, then file); False if there was none."""
        return self.uploads.delete(upload_id)

    def open_upload_count(self) -> int:
        """How many unexpired uploads there are (disk claims live in upload_claims)."""
        return self.uploads.open_count()

    def list_open_uploads(self) -> Sequence[tuple[str, int, int]]:
        """Unexpired uploads: (id, length, offset) of each."""
        return self.uploads.list_open()

    def purge_expired_uploads(self) -> int:
        """Delete uploads past their expiry hour; how many."""
        return self.uploads.purge_expired()

    # --- reply slots ---

    def reply_writer(self) -> TemporaryBlob:
        """A temporary file to stream a reply into, then hand to ``put_reply``."""
        return self.replies.temporary_blob()

    def put_reply(
        self,
        tag: str,
        expected_sha256: str | None,
        delete_token_sha256: str,
        written: TemporaryBlob,
    ) -> ReplySlot:
        """Fill a slot by compare-and-swap (see ReplySlots.put)."""
        return self.replies.put(tag, expected_sha256, delete_token_sha256, written)

    def get_reply(self, tag: str) -> ReplySlot | None:
        """The filled slot ``tag``, or None."""
        return self.replies.get(tag)

    def list_replies(self, after: str | None = None, limit: int = 100) -> builtins.list[ReplySlot]:
        """Up to ``limit`` filled slots ordered by tag, after tag ``after``."""
        return self.replies.list(after, limit)

    def reply_sizes(self, tags: builtins.list[str]) -> builtins.list[int | None]:
        """For each tag in order, its reply's size or None."""
        return self.replies.sizes(tags)

    def open_reply(self, tag: str) -> BinaryIO:
        """A reply's age file, opened with O_NOATIME; FileNotFoundError if the slot is empty."""
        return self.replies.open_blob(tag)

    def delete_reply(self, tag: str) -> bool:
        """Empty a slot (a reviewer's delete); False if it was empty."""
        return self.replies.delete(tag)

    def delete_reply_with_token(self, tag: str, token: bytes) -> bool:
        """Empty a slot if ``token`` is its delete token (a source's delete)."""
        return self.replies.delete_with_token(tag, token)

    def purge_replies_older_than(self, days: int) -> int:
        """Empty the slots whose day is more than ``days`` days ago; how many."""
        return self.replies.purge_older_than(days)

    # --- file times ---

    def blur_file_times(self) -> None:
        """Floor every file's and folder's times to midnight UTC: change times become now.

        After a run, every change time in the data folder reads the moment of
        the run, which says of each file only that it existed by then.
        Folders go last, so that re-stamping their files changes nothing in them.
        """
        for folder in self._folders:
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
            for name in names:
                restamp_to_midnight(folder / name)
        self._blur_other_folders()
        with self.database.lock:  # no transaction creates or writes the journal meanwhile
            with os.scandir(self.data_dir) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
            for name in names:
                restamp_to_midnight(self.data_dir / name)
        for folder in (*self._folders, self.data_dir):
            restamp_to_midnight(folder)

    def _blur_other_folders(self) -> None:
        """Folders the store does not own (the relay's gpg home of public keys), whole."""
        known = {Path(folder) for folder in self._folders}
        with os.scandir(self.data_dir) as entries:
            others = [
                Path(entry.path)
                for entry in entries
                if entry.is_dir(follow_symlinks=False) and Path(entry.path) not in known
            ]
        for top in others:
            for root, folders, files in os.walk(top, topdown=False):
                for name in (*files, *folders):
                    restamp_to_midnight(Path(root) / name)
            restamp_to_midnight(top)

    # --- health ---

    def check_health(self) -> None:
        """Raise StorageError unless the database answers and the folders are writable.

        Deliberately reports nothing else: counts would reveal activity.
        """
        try:
            with self.database.connection() as db:
                db.execute("SELECT 1 FROM migrations LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StorageError("The database does not answer.") from exc
        for folder in self._folders:
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StorageError("A data folder is not writable.")
        probe = self.tmp_dir / f"{new_id()}.health"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
        except OSError as exc:
            raise StorageError("The data folder is not writable.") from exc

    def free_bytes(self) -> int:
        """Free space on the data folder's file system (for the disk reserve; never report it)."""
        return shutil.disk_usage(self.data_dir).free
