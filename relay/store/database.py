"""The store's one SQLite connection: its pragmas and its lock.

SQLite runs with a rollback journal truncated at every commit (not a
write-ahead log, which keeps every recent transaction in order) and
``secure_delete``, so a deleted row is overwritten and no file holds it once
its transaction commits. One connection is shared by the server's threads
behind a lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from relay.errors import StorageError

DB_NAME = "relay.sqlite3"
JOURNAL_MODE = "truncate"


class StoreDatabase:
    """The SQLite file of a data folder, opened with the pragmas that keep it discreet."""

    def __init__(self, path: Path, *, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        # Held by every query, and by the file-times blur so that no transaction
        # creates or writes the journal while it runs.
        self.lock = threading.RLock()
        self._db: Database | None = None

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``close``."""
        return self._db is not None

    def open(self) -> Database:
        """Connect (creating the file 0600) and set the pragmas."""
        # Create the file ourselves so that it (and SQLite's -journal, which
        # copies its mode) is 0600 whatever the umask.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self.path.chmod(0o600)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False
        )
        db = Database(conn, execute_plugins=False)
        self._db = db
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        # A rollback journal, truncated (and fsynced) at every commit, holds
        # old pages only while their transaction runs; a write-ahead log would
        # keep recent transactions in order, deleted rows included, until a
        # checkpoint. Switching also converts a database left in WAL mode.
        mode = db.execute(f"PRAGMA journal_mode = {JOURNAL_MODE}").fetchone()
        if mode is None or str(mode[0]).lower() != JOURNAL_MODE:
            raise StorageError(f"The database {self.path} cannot leave WAL mode: is it in use?")
        db.execute("PRAGMA synchronous = FULL")  # an acknowledged commit is on disk
        db.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten with zeros
        return db

    def close(self) -> None:
        """Close the connection (waits for a running query)."""
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def connection(self) -> Iterator[Database]:
        """The open database, held alone by this thread for the ``with`` block."""
        with self.lock:
            if self._db is None:
                raise StorageError("The store is not open.")
            yield self._db
