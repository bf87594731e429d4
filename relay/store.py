"""Where ciphertext lives: one SQLite file (rows) plus one file per submission.

Layout of ``data_dir`` (folders 0700, files 0600)::

    relay.sqlite3          rows: submissions, uploads, migrations
    relay.sqlite3-journal  SQLite's rollback journal: empty between transactions
    blobs/<id>.age         one committed submission, exactly the age file received
    tmp/                   blobs being written; anything here after a crash is removed
    uploads/<id>.part      resumable (tus) uploads in progress
    lock                   held while a store is open: one relay per data folder

The order of writes is what makes an acknowledged submission durable and a
crash harmless: the blob is written to tmp/, fsynced, renamed into blobs/,
the folder is fsynced, and only then is its row inserted. A row therefore
never points to a missing blob; a blob without a row is a submission that was
never acknowledged, and ``open()`` removes it. Deletion runs the other way
(row first, then blob).

What a seized disk shows is kept to the day. Rows have the UTC day, uploads an
expiry rounded to the hour. SQLite runs with a rollback journal truncated at
every commit (not a write-ahead log, which keeps every recent transaction in
order) and ``secure_delete``, so a deleted row is overwritten and no file holds
it once its transaction commits. A blob's access and modification times are
midnight of its day; ``blur_file_times`` (run periodically by the server)
floors every file's and folder's times to midnight and so sets all their
change times to the moment of that run (see relay.file_times). Blobs are read
with ``O_NOATIME``.

Every method blocks; the server calls the slow ones through ``asyncio.to_thread``.
One connection is shared by the server's threads behind a lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlite_utils import Database

from relay.errors import (
    LimitExceededError,
    StorageError,
    StorageFullError,
    UploadNotFoundError,
    UploadOffsetError,
)
from relay.file_times import (
    midnight_of_day_ns,
    open_without_atime,
    restamp_to_midnight,
    set_times_to_midnight,
)
from relay.files import file_sha256, fsync_directory
from relay.log import get_logger

if TYPE_CHECKING:
    from relay.config import Config

SEALED_BY = ("server", "browser")
STATE_STORED = "stored"
DB_NAME = "relay.sqlite3"
JOURNAL_MODE = "truncate"
MAX_LIST_LIMIT = 1000
_ID = re.compile(r"[0-9a-f]{32}")
_BLOB_NAME = re.compile(r"([0-9a-f]{32})\.age")
_PART_NAME = re.compile(r"([0-9a-f]{32})\.part")
_HOUR_FORMAT = "%Y-%m-%dT%H"
_UPLOAD_LOCK_STRIPES = 64

_log = get_logger("relay.store")


@dataclass(frozen=True)
class SubmissionRecord:
    """A stored submission: its ciphertext is ``blobs/<id>.age``."""

    id: str  # 32 hex digits, random
    day: str  # "YYYY-MM-DD", UTC; never a time of day
    size: int  # bytes of ciphertext
    sha256: str  # hex digest of the ciphertext
    sealed_by: str  # who encrypted it: "browser" (the source's) or "server"
    state: str  # "stored"


@dataclass(frozen=True)
class UploadRecord:
    """A resumable upload in progress: ``uploads/<id>.part`` holds ``offset`` bytes."""

    id: str
    length: int  # declared total length
    offset: int  # bytes received and fsynced
    expires_day_hour: str  # "YYYY-MM-DDTHH", UTC: expired from this hour on


def is_valid_id(value: str) -> bool:
    """True for a submission or upload id: 32 lower-case hex digits."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _new_id() -> str:
    return secrets.token_hex(16)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _today() -> str:
    return _utc_now().date().isoformat()


def _current_hour() -> str:
    return _utc_now().strftime(_HOUR_FORMAT)


@contextmanager
def _disk_errors() -> Iterator[None]:
    """An OSError while storing (a full disk...) becomes a StorageError a person can read."""
    try:
        yield
    except OSError as exc:
        raise _storage_error(exc) from exc


def _disk_error_message(exc: BaseException) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "input/output error"
    return f"The submission could not be stored: {reason}."


@contextmanager
def _database_errors(message: str) -> Iterator[None]:
    """An SQLite error while recording becomes a StorageError (StorageFullError when full)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _storage_error(exc, message) from exc


def _is_disk_full(exc: BaseException) -> bool:
    """A full file system (or quota), seen by the OS or by SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


def _storage_error(exc: BaseException, message: str | None = None) -> StorageError:
    """The StorageError a person reads for ``exc``: StorageFullError when the disk is full."""
    if message is None:
        message = _disk_error_message(exc)
    return StorageFullError(message) if _is_disk_full(exc) else StorageError(message)


def _blur_file_times(path: Path, day: str) -> None:
    # A file's access and modification times would record the arrival to the
    # nanosecond; set both to midnight UTC of its day. (Its change time cannot
    # be set: SubmissionStore.blur_file_times blurs that, periodically.)
    set_times_to_midnight(path, midnight_of_day_ns(day))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- migrations: named functions, each recorded in `migrations` once applied ---


def create_submissions_table(db: Database) -> None:
    """Submissions: no rowid, so nothing records the order of arrival within a day."""
    db.execute(
        """CREATE TABLE submissions (
            id TEXT PRIMARY KEY CHECK (length(id) = 32),
            day TEXT NOT NULL CHECK (length(day) = 10),
            size INTEGER NOT NULL CHECK (size >= 0),
            sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
            sealed_by TEXT NOT NULL CHECK (sealed_by IN ('server', 'browser')),
            state TEXT NOT NULL
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX submissions_by_day ON submissions (day)")


def create_uploads_table(db: Database) -> None:
    """Resumable uploads in progress."""
    db.execute(
        """CREATE TABLE uploads (
            id TEXT PRIMARY KEY CHECK (length(id) = 32),
            length INTEGER NOT NULL CHECK (length > 0),
            "offset" INTEGER NOT NULL CHECK ("offset" >= 0 AND "offset" <= length),
            expires_day_hour TEXT NOT NULL CHECK (length(expires_day_hour) = 13)
        ) WITHOUT ROWID"""
    )


Migration = Callable[[Database], None]
MIGRATIONS: tuple[Migration, ...] = (create_submissions_table, create_uploads_table)


def run_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply each migration not yet recorded, each in its own transaction; the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY) WITHOUT ROWID")
    done = {row["name"] for row in db.query("SELECT name FROM migrations")}
    applied: list[str] = []
    for migration in migrations:
        name = migration.__name__
        if name in done:
            continue
        with db.atomic():
            migration(db)
            db.execute("INSERT INTO migrations (name) VALUES (?)", [name])
        applied.append(name)
    return applied


@dataclass
class _PendingCommit:
    """One submission waiting for its group commit (see SubmissionStore._commit_file)."""

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

    def __init__(self, store: SubmissionStore) -> None:
        self._store = store
        self._path = store.tmp_dir / f"{_new_id()}.tmp"
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, data: bytes) -> None:
        """Append ciphertext."""
        if self._file is None:
            raise StorageError("This submission is already committed or abandoned.")
        with _disk_errors():
            self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def commit(self, sealed_by: str) -> SubmissionRecord:
        """fsync, rename into blobs/, fsync the folder, insert the row; then it is durable."""
        if sealed_by not in SEALED_BY:
            raise ValueError(f"sealed_by must be 'server' or 'browser', not {sealed_by!r}")
        if self._file is None:
            raise StorageError("This submission is already committed or abandoned.")
        file, self._file = self._file, None
        try:
            with _disk_errors():
                file.flush()
                os.fsync(file.fileno())
        finally:
            file.close()
        return self._store._commit_file(self._path, self._size, self._hash.hexdigest(), sealed_by)

    def abort(self) -> None:
        """Discard what was written (the file goes even when closing it fails: a full disk)."""
        file, self._file = self._file, None
        try:
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()
        finally:
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class SubmissionStore:
    """Rows in SQLite and ciphertext files in ``data_dir``; see the module docstring."""

    def __init__(
        self, data_dir: Path, *, busy_timeout_ms: int = 5000, upload_expiry_hours: int = 24
    ) -> None:
        self.data_dir = data_dir
        self.blobs_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        self.uploads_dir = data_dir / "uploads"
        self.db_path = data_dir / DB_NAME
        self.busy_timeout_ms = busy_timeout_ms
        self.upload_expiry_hours = upload_expiry_hours
        self._db: Database | None = None
        self._lock_fd: int | None = None
        self._db_lock = threading.RLock()
        self._commit_turn = threading.Condition()
        self._commit_queue: list[_PendingCommit] = []
        self._committing = False
        # Striped, so that ids sent by clients cannot grow a table of locks.
        self._upload_locks = tuple(threading.Lock() for _ in range(_UPLOAD_LOCK_STRIPES))

    @classmethod
    def from_config(cls, config: Config) -> SubmissionStore:
        """A store on ``config.data_dir`` with the configured timeouts and expiry."""
        return cls(
            config.data_dir,
            busy_timeout_ms=config.sqlite_busy_timeout_ms,
            upload_expiry_hours=config.upload_expiry_hours,
        )

    # --- life cycle ---

    def open(self) -> None:
        """Create the folders, take the data folder's lock, migrate, and recover from a crash."""
        if self._db is not None:
            return
        try:
            self._make_folders()
            self._take_lock()
            self._db = self._connect()
            run_migrations(self._db)
            self._recover()
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
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SubmissionStore:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _make_folders(self) -> None:
        for folder in (self.data_dir, self.blobs_dir, self.tmp_dir, self.uploads_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if folder.stat().st_mode & 0o777 != 0o700:
                folder.chmod(0o700)
        device = self.data_dir.stat().st_dev
        for folder in (self.blobs_dir, self.tmp_dir, self.uploads_dir):
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

    def _connect(self) -> Database:
        # Create the file ourselves so that it (and SQLite's -journal, which
        # copies its mode) is 0600 whatever the umask.
        os.close(os.open(self.db_path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db_path.chmod(0o600)
        conn = sqlite3.connect(
            self.db_path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False
        )
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        # A rollback journal, truncated (and fsynced) at every commit, holds
        # old pages only while their transaction runs; a write-ahead log would
        # keep recent transactions in order, deleted rows included, until a
        # checkpoint. Switching also converts a database left in WAL mode.
        mode = db.execute(f"PRAGMA journal_mode = {JOURNAL_MODE}").fetchone()
        if mode is None or str(mode[0]).lower() != JOURNAL_MODE:
            raise StorageError(f"The database {self.db_path} cannot leave WAL mode: is it in use?")
        db.execute("PRAGMA synchronous = FULL")  # an acknowledged commit is on disk
        db.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten with zeros
        return db

    @contextmanager
    def _database(self) -> Iterator[Database]:
        with self._db_lock:
            if self._db is None:
                raise StorageError("The store is not open.")
            yield self._db

    def _upload_lock(self, upload_id: str) -> threading.Lock:
        """The lock serialising changes to one upload (shared with a few others)."""
        return self._upload_locks[hash(upload_id) % _UPLOAD_LOCK_STRIPES]

    # --- crash recovery ---

    def _recover(self) -> None:
        removed = 0
        for leftover in self.tmp_dir.iterdir():
            _remove(leftover)
            removed += 1
        if removed:
            _log.warning("store_removed_temporary_files", component="store", count=removed)
        with self._database() as db:
            row_ids = {row["id"] for row in db.query("SELECT id FROM submissions")}
            upload_rows = [_upload_record(row) for row in db.query("SELECT * FROM uploads")]
        blob_ids = self._recover_blobs(row_ids)
        for missing in sorted(row_ids - blob_ids):
            with self._database() as db:
                db.execute("DELETE FROM submissions WHERE id = ?", [missing])
            _log.error("store_row_without_blob_removed", component="store", submission_id=missing)
        self._recover_uploads(upload_rows)
        for folder in (self.tmp_dir, self.blobs_dir, self.uploads_dir):
            fsync_directory(folder)

    def _recover_blobs(self, row_ids: set[str]) -> set[str]:
        present: set[str] = set()
        removed = 0
        for path in self.blobs_dir.iterdir():
            match = _BLOB_NAME.fullmatch(path.name)
            if match is not None and match.group(1) in row_ids and path.is_file():
                present.add(match.group(1))
                continue
            # Never acknowledged (the crash came before its row), or not ours.
            _remove(path)
            removed += 1
        if removed:
            _log.warning("store_removed_blobs_without_row", component="store", count=removed)
        return present

    def _recover_uploads(self, rows: list[UploadRecord]) -> None:
        by_id = {row.id: row for row in rows}
        removed = 0
        for path in self.uploads_dir.iterdir():
            match = _PART_NAME.fullmatch(path.name)
            if match is None or match.group(1) not in by_id or not path.is_file():
                _remove(path)
                removed += 1
        if removed:
            _log.warning("store_removed_uploads_without_row", component="store", count=removed)
        for row in rows:
            self._recover_upload(row)

    def _recover_upload(self, row: UploadRecord) -> None:
        part = self.upload_path(row.id)
        if not part.is_file():
            with self._database() as db:
                db.execute("DELETE FROM uploads WHERE id = ?", [row.id])
            _log.error("store_upload_without_file_removed", component="store", upload_id=row.id)
            return
        size = part.stat().st_size
        if size > row.offset:
            # Bytes written but never acknowledged: the client sends them again.
            with part.open("r+b") as file:
                file.truncate(row.offset)
                os.fsync(file.fileno())
        elif size < row.offset:
            with self._database() as db:
                db.execute('UPDATE uploads SET "offset" = ? WHERE id = ?', [size, row.id])
            _log.error("store_upload_shorter_than_recorded", component="store", upload_id=row.id)

    # --- submissions ---

    def blob_writer(self) -> BlobWriter:
        """A writer for one new submission (a context manager; see BlobWriter)."""
        if self._db is None:
            raise StorageError("The store is not open.")
        return BlobWriter(self)

    def _commit_file(
        self, temporary: Path, size: int, sha256: str, sealed_by: str
    ) -> SubmissionRecord:
        """Move an fsynced file into blobs/ and insert its row, in the durable order.

        Group commit: a commit that arrives while another is being written
        waits, then goes out with every other that queued meanwhile, sharing
        one folder fsync and one SQLite transaction. Each file was fsynced by
        its own writer; nothing returns before its rename, the folder fsync and
        its row are all done. Disk sync latency, not CPU, bounds small tips.
        """
        record = SubmissionRecord(_new_id(), _today(), size, sha256, sealed_by, STATE_STORED)
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
                _blur_file_times(pending.temporary, pending.record.day)
                os.replace(pending.temporary, pending.blob)
            except OSError as exc:
                pending.finish(_storage_error(exc))
                pending.temporary.unlink(missing_ok=True)
            else:
                renamed.append(pending)
        if not renamed:
            return
        try:
            fsync_directory(self.blobs_dir)
            with self._database() as db, db.atomic():
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
                    _storage_error(
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
        with self._database() as db:
            rows = list(db.query("SELECT * FROM submissions WHERE id = ?", [submission_id]))
        return _submission_record(rows[0]) if rows else None

    def list(self, after: str | None = None, limit: int = 100) -> list[SubmissionRecord]:
        """Up to ``limit`` submissions ordered by id, those after id ``after`` (a cursor)."""
        if after is not None and not is_valid_id(after):
            raise ValueError("after must be a submission id")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        with self._database() as db:
            rows = list(
                db.query(
                    "SELECT * FROM submissions WHERE id > ? ORDER BY id LIMIT ?",
                    [after or "", limit],
                )
            )
        return [_submission_record(row) for row in rows]

    def open_blob(self, submission_id: str) -> BinaryIO:
        """The ciphertext, opened for reading; FileNotFoundError if there is no such submission."""
        if self.get(submission_id) is None:
            raise FileNotFoundError("no such submission")
        return open_without_atime(self.blob_path(submission_id))

    def delete(self, submission_id: str) -> bool:
        """Delete row, then ciphertext, durably; False if there was no such submission."""
        if not is_valid_id(submission_id):
            return False
        with self._database() as db:
            deleted = db.execute("DELETE FROM submissions WHERE id = ?", [submission_id]).rowcount
        if not deleted:
            return False
        self.blob_path(submission_id).unlink(missing_ok=True)
        fsync_directory(self.blobs_dir)
        return True

    def purge_older_than(self, days: int) -> int:
        """Delete submissions whose day is more than ``days`` days ago; how many."""
        if days < 0:
            raise ValueError("days must not be negative")
        cutoff = (date.fromisoformat(_today()) - timedelta(days=days)).isoformat()
        with self._database() as db, db.atomic():
            ids = [r["id"] for r in db.query("SELECT id FROM submissions WHERE day < ?", [cutoff])]
            db.execute("DELETE FROM submissions WHERE day < ?", [cutoff])
        for submission_id in ids:
            self.blob_path(submission_id).unlink(missing_ok=True)
        if ids:
            fsync_directory(self.blobs_dir)
        return len(ids)

    # --- file times ---

    def blur_file_times(self) -> None:
        """Floor every file's and folder's times to midnight UTC: change times become now.

        After a run, every change time in the data folder reads the moment of
        the run, which says of each file only that it existed by then.
        Folders go last, so that re-stamping their files changes nothing in them.
        """
        for folder in (self.blobs_dir, self.uploads_dir, self.tmp_dir):
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
            for name in names:
                restamp_to_midnight(folder / name)
        with self._db_lock:  # no transaction creates or writes the journal meanwhile
            with os.scandir(self.data_dir) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
            for name in names:
                restamp_to_midnight(self.data_dir / name)
        for folder in (self.blobs_dir, self.uploads_dir, self.tmp_dir, self.data_dir):
            restamp_to_midnight(folder)

    # --- resumable uploads ---

    def create_upload(self, length: int) -> UploadRecord:
        """Start an upload of ``length`` bytes: an empty .part file, then its row."""
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise ValueError("an upload's length must be a positive number of bytes")
        this_hour = _utc_now().replace(minute=0, second=0, microsecond=0)
        # Rounded up to the next hour: the upload lives at least the configured time.
        expires = (this_hour + timedelta(hours=self.upload_expiry_hours + 1)).strftime(
            _HOUR_FORMAT
        )
        record = UploadRecord(_new_id(), length, 0, expires)
        part = self.upload_path(record.id)
        with _disk_errors():
            os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            fsync_directory(self.uploads_dir)
        try:
            with self._database() as db, _database_errors("The upload could not be recorded."):
                db.execute(
                    'INSERT INTO uploads (id, length, "offset", expires_day_hour) '
                    "VALUES (?, ?, 0, ?)",
                    [record.id, length, expires],
                )
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return record

    def upload_path(self, upload_id: str) -> Path:
        """Where an upload's received bytes are; ValueError for anything but a valid id."""
        if not is_valid_id(upload_id):
            raise ValueError("not an upload id")
        return self.uploads_dir / f"{upload_id}.part"

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        """The upload's row; None if there is none, the id is malformed, or it has expired."""
        if not is_valid_id(upload_id):
            return None
        with self._database() as db:
            rows = list(db.query("SELECT * FROM uploads WHERE id = ?", [upload_id]))
        if not rows:
            return None
        record = _upload_record(rows[0])
        return None if record.expires_day_hour <= _current_hour() else record

    def append_upload(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (which must be the stored offset), fsync; the new offset.

        Raises UploadNotFoundError, UploadOffsetError (its ``expected`` is the
        stored offset) or LimitExceededError (past the declared length). When it
        returns, the bytes survive a crash.
        """
        with self._upload_lock(upload_id):
            record = self.get_upload(upload_id)
            if record is None:
                raise UploadNotFoundError()
            if offset != record.offset:
                raise UploadOffsetError(expected=record.offset)
            new_offset = offset + len(data)
            if new_offset > record.length:
                raise LimitExceededError("The upload is longer than the length it declared.")
            if not data:
                return offset
            with _disk_errors(), self.upload_path(upload_id).open("r+b") as file:
                file.seek(offset)
                file.write(data)
                file.truncate()  # drop anything a crash left beyond the offset
                file.flush()
                os.fsync(file.fileno())
            with self._database() as db, _database_errors("The upload could not be recorded."):
                db.execute(
                    'UPDATE uploads SET "offset" = ? WHERE id = ?', [new_offset, upload_id]
                )
            return new_offset

    def finish_upload(self, upload_id: str, sealed_by: str) -> SubmissionRecord:
        """Turn a complete upload into a submission (rename into blobs/, row), durably.

        Validate the content (e.g. the age header) before calling this.
        Acknowledge the upload's last bytes only after it returns.
        """
        if sealed_by not in SEALED_BY:
            raise ValueError(f"sealed_by must be 'server' or 'browser', not {sealed_by!r}")
        with self._upload_lock(upload_id):
            record = self.get_upload(upload_id)
            if record is None:
                raise UploadNotFoundError()
            if record.offset != record.length:
                raise StorageError(
                    f"The upload is incomplete: {record.offset} of {record.length} bytes."
                )
            part = self.upload_path(upload_id)
            with _disk_errors():
                sha256 = file_sha256(part)
                _fsync_file(part)
            return self._commit_upload(part, record, sha256, sealed_by)

    def _commit_upload(
        self, part: Path, upload: UploadRecord, sha256: str, sealed_by: str
    ) -> SubmissionRecord:
        record = SubmissionRecord(
            _new_id(), _today(), upload.length, sha256, sealed_by, STATE_STORED
        )
        blob = self.blob_path(record.id)
        with _disk_errors():
            _blur_file_times(part, record.day)
            os.replace(part, blob)
            fsync_directory(self.blobs_dir)
            fsync_directory(self.uploads_dir)
        try:
            with self._database() as db, db.atomic():
                db.execute("DELETE FROM uploads WHERE id = ?", [upload.id])
                db.execute(
                    "INSERT INTO submissions (id, day, size, sha256, sealed_by, state) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [record.id, record.day, record.size, sha256, sealed_by, record.state],
                )
        except BaseException as exc:
            # The row is still there (rolled back): put its bytes back beside it, so
            # the upload can still be finished, rather than lose what was sent.
            try:
                os.replace(blob, part)
            except OSError:
                blob.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.Error):
                raise _storage_error(exc, "The submission could not be recorded.") from exc
            raise
        return record

    def delete_upload(self, upload_id: str) -> bool:
        """Abandon an upload (row, then file); False if there was none."""
        if not is_valid_id(upload_id):
            return False
        with self._upload_lock(upload_id):
            return self._delete_upload_unlocked(upload_id)

    def _delete_upload_unlocked(self, upload_id: str) -> bool:
        with self._database() as db:
            deleted = db.execute("DELETE FROM uploads WHERE id = ?", [upload_id]).rowcount
        self.upload_path(upload_id).unlink(missing_ok=True)
        return bool(deleted)

    def open_uploads(self) -> tuple[int, int]:
        """Unexpired uploads: how many, and how many bytes they may still add."""
        with self._database() as db:
            row = db.execute(
                'SELECT COUNT(*), COALESCE(SUM(length - "offset"), 0) FROM uploads '
                "WHERE expires_day_hour > ?",
                [_current_hour()],
            ).fetchone()
        return int(row[0]), int(row[1])

    def list_open_uploads(self) -> Sequence[tuple[str, int, int]]:
        """Unexpired uploads: (id, length, offset) of each."""
        with self._database() as db:
            rows = db.execute(
                'SELECT id, length, "offset" FROM uploads WHERE expires_day_hour > ?',
                [_current_hour()],
            ).fetchall()
        return [(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    def purge_expired_uploads(self) -> int:
        """Delete uploads past their expiry hour; how many."""
        with self._database() as db:
            ids = [
                row["id"]
                for row in db.query(
                    "SELECT id FROM uploads WHERE expires_day_hour <= ?", [_current_hour()]
                )
            ]
        for upload_id in ids:
            with self._upload_lock(upload_id):
                self._delete_upload_unlocked(upload_id)
        if ids:
            fsync_directory(self.uploads_dir)
        return len(ids)

    # --- health ---

    def check_health(self) -> None:
        """Raise StorageError unless the database answers and the folders are writable.

        Deliberately reports nothing else: counts would reveal activity.
        """
        try:
            with self._database() as db:
                db.execute("SELECT 1 FROM migrations LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StorageError("The database does not answer.") from exc
        for folder in (self.blobs_dir, self.tmp_dir, self.uploads_dir):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StorageError("A data folder is not writable.")
        probe = self.tmp_dir / f"{_new_id()}.health"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
        except OSError as exc:
            raise StorageError("The data folder is not writable.") from exc

    def free_bytes(self) -> int:
        """Free space on the data folder's file system (for the disk reserve; never report it)."""
        return shutil.disk_usage(self.data_dir).free


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _submission_record(row: dict[str, Any]) -> SubmissionRecord:
    return SubmissionRecord(
        id=row["id"],
        day=row["day"],
        size=row["size"],
        sha256=row["sha256"],
        sealed_by=row["sealed_by"],
        state=row["state"],
    )


def _upload_record(row: dict[str, Any]) -> UploadRecord:
    return UploadRecord(
        id=row["id"],
        length=row["length"],
        offset=row["offset"],
        expires_day_hour=row["expires_day_hour"],
    )
