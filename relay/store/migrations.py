"""The schema, as named migrations: each is applied once and recorded in ``migrations``.

Never edit a migration that has shipped; add a new one at the end of ``MIGRATIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlite_utils import Database

from relay.errors import StorageError

Migration = Callable[[Database], None]


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


def create_reply_slots_table(db: Database) -> None:
    """Reply slots, keyed by their tag alone: no column links one slot to another.

    ``blob`` is the random name of the file in replies/ (never the tag);
    ``sha256`` is the hash the slot holds (compare-and-swap); the delete
    token itself is never stored, only its hash. No rowid: nothing records
    the order in which slots were written.
    """
    db.execute(
        """CREATE TABLE reply_slots (
            tag TEXT PRIMARY KEY CHECK (length(tag) = 64),
            blob TEXT NOT NULL UNIQUE CHECK (length(blob) = 32),
            day TEXT NOT NULL CHECK (length(day) = 10),
            size INTEGER NOT NULL CHECK (size >= 0),
            sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
            delete_token_sha256 TEXT NOT NULL CHECK (length(delete_token_sha256) = 64)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX reply_slots_by_day ON reply_slots (day)")


def create_arrival_counter(db: Database) -> None:
    """One number for the team's digest (relay.notify): submissions stored since the last one.

    A trigger adds one for every new row, so no code path that stores a
    submission can forget it, and nothing but the number is kept (no id, no
    time). The table holds its one row only while notifications are on
    (``SubmissionStore.count_arrivals``); without it the trigger changes nothing.
    """
    db.execute(
        """CREATE TABLE arrival_counter (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            arrived INTEGER NOT NULL CHECK (arrived >= 0)
        )"""
    )
    db.execute(
        """CREATE TRIGGER count_arrival AFTER INSERT ON submissions
        BEGIN
            UPDATE arrival_counter SET arrived = arrived + 1;
        END"""
    )


MIGRATIONS: tuple[Migration, ...] = (
    create_submissions_table,
    create_uploads_table,
    create_reply_slots_table,
    create_arrival_counter,
)


class NewerSchemaError(StorageError):
    """The database was migrated by a newer tiprelay than this one."""


def run_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply each migration not yet recorded, each in its own transaction; the names applied.

    A database that records a migration this release does not have was
    migrated by a newer release (an upgrade rolled back): it is refused with
    NewerSchemaError, never opened by code that does not know its schema.
    """
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY) WITHOUT ROWID")
    done = {row["name"] for row in db.query("SELECT name FROM migrations")}
    unknown = sorted(done - {migration.__name__ for migration in migrations})
    if unknown:
        raise NewerSchemaError(
            "The database was migrated by a newer tiprelay release (migrations this one does "
            f"not have: {', '.join(unknown)}). Run that release again, or restore the backup "
            "of the data folder made before upgrading (docs/operators.md, \"Upgrade\")."
        )
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
