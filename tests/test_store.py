"""relay.store on real SQLite files and real folders: durability, recovery, retention."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from relay.errors import LimitExceededError, StorageError, UploadNotFoundError, UploadOffsetError
from relay.store import (
    MIGRATIONS,
    SubmissionRecord,
    SubmissionStore,
    run_migrations,
)
from tests import support_logcapture
from tests.support_logcapture import CapturedLog
from tests.support_process import kill_process, popen

captured_log = support_logcapture.captured_log

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SubmissionStore]:
    with SubmissionStore(data_dir) as opened:
        yield opened


def commit(store: SubmissionStore, data: bytes, sealed_by: str = "server") -> SubmissionRecord:
    with store.blob_writer() as writer:
        writer.write(data[: len(data) // 2])
        writer.write(data[len(data) // 2 :])
        return writer.commit(sealed_by)


def sql(data_dir: Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    """Run SQL on the store's file directly, as another process would (store closed)."""
    connection = sqlite3.connect(data_dir / "relay.sqlite3")
    try:
        with connection:
            return connection.execute(statement, params).fetchall()
    finally:
        connection.close()


def names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


# --- layout ---


def test_open_creates_private_folders_and_a_journalled_database(
    store: SubmissionStore, data_dir: Path
):
    for folder in (data_dir, data_dir / "blobs", data_dir / "tmp", data_dir / "uploads"):
        assert folder.stat().st_mode & 0o777 == 0o700
    commit(store, b"ciphertext")
    for file in data_dir.iterdir():
        if file.is_file():  # relay.sqlite3, its -journal, lock
            assert file.stat().st_mode & 0o777 == 0o600, file.name
    assert "relay.sqlite3-journal" in names(data_dir)
    assert store.sqlite().execute("PRAGMA journal_mode").fetchone() == ("truncate",)
    assert store.sqlite().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_a_second_store_on_the_same_folder_is_refused(store: SubmissionStore, data_dir: Path):
    with pytest.raises(StorageError, match="in use by another tiprelay process"):
        SubmissionStore(data_dir).open()
    store.close()
    SubmissionStore(data_dir).open()  # released on close


# --- committing ---


def test_commit_stores_the_exact_bytes_with_a_row(store: SubmissionStore, data_dir: Path):
    data = os.urandom(100_000)
    record = commit(store, data, "browser")
    assert re.fullmatch(r"[0-9a-f]{32}", record.id)
    assert record.day == datetime.now(UTC).date().isoformat()
    assert (record.size, record.sealed_by, record.state) == (len(data), "browser", "stored")
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert store.blob_path(record.id) == data_dir / "blobs" / f"{record.id}.age"
    assert store.blob_path(record.id).stat().st_mode & 0o777 == 0o600
    with store.open_blob(record.id) as blob:
        assert blob.read() == data
    assert store.get(record.id) == record
    assert names(data_dir / "tmp") == set()


def test_concurrent_commits_share_group_commits_and_all_become_durable(
    store: SubmissionStore, data_dir: Path
):
    payloads = [os.urandom(1000 + i) for i in range(48)]
    records: list[SubmissionRecord] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(payloads))

    def commit_one(data: bytes) -> None:
        start.wait()
        try:
            records.append(commit(store, data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=commit_one, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.id for r in records}) == len(payloads)
    stored = {r.id: r for r in store.list(limit=1000)}
    assert set(stored) == {r.id for r in records}
    by_hash = {hashlib.sha256(p).hexdigest(): p for p in payloads}
    for record in records:
        assert store.blob_path(record.id).read_bytes() == by_hash[record.sha256]
    assert names(data_dir / "tmp") == set()


def test_a_commit_that_fails_in_a_group_fails_alone(store: SubmissionStore, data_dir: Path):
    # Hold the commit turn so that both commits queue up into one group.
    doomed = store.blob_writer()
    doomed.write(b"lost before its rename")
    os.unlink(data_dir / "tmp" / doomed.path.name)  # the rename will fail
    outcomes: dict[str, object] = {}

    def run(name: str, action: object) -> None:
        try:
            outcomes[name] = action()  # type: ignore[operator]
        except StorageError as exc:
            outcomes[name] = exc

    with store.submissions._commit_turn:
        store.submissions._committing = True
        threads = [
            threading.Thread(target=run, args=("doomed", lambda: doomed.commit("server"))),
            threading.Thread(target=run, args=("fine", lambda: commit(store, b"fine"))),
        ]
        for thread in threads:
            thread.start()
    while len(store.submissions._commit_queue) < 2:
        threading.Event().wait(0.01)
    with store.submissions._commit_turn:
        store.submissions._committing = False
        store.submissions._commit_turn.notify_all()
    for thread in threads:
        thread.join()
    assert isinstance(outcomes["doomed"], StorageError)
    assert "could not be stored" in str(outcomes["doomed"])
    fine = outcomes["fine"]
    assert isinstance(fine, SubmissionRecord)
    assert [r.id for r in store.list()] == [fine.id]
    assert names(data_dir / "blobs") == {f"{fine.id}.age"}


def test_leaving_the_writer_without_commit_leaves_nothing(store: SubmissionStore, data_dir: Path):
    with store.blob_writer() as writer:
        writer.write(b"half a submission")
        assert len(names(data_dir / "tmp")) == 1
    with pytest.raises(RuntimeError), store.blob_writer() as writer:
        writer.write(b"the client went away")
        raise RuntimeError("disconnected")
    assert names(data_dir / "tmp") == set()
    assert names(data_dir / "blobs") == set()
    assert store.list() == []


def test_writer_refuses_use_after_commit_and_bad_sealed_by(store: SubmissionStore):
    with store.blob_writer() as writer:
        writer.write(b"x")
        with pytest.raises(ValueError, match="sealed_by"):
            writer.commit("someone")
        writer.commit("server")
        with pytest.raises(StorageError):
            writer.write(b"more")


def test_concurrent_commits_from_threads_all_land(store: SubmissionStore, data_dir: Path):
    records: list[SubmissionRecord] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(5):
            record = commit(store, f"thread {n} blob {i}".encode())
            with lock:
                records.append(record)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.id for r in records}) == 30
    assert {r.id for r in store.list(limit=100)} == {r.id for r in records}
    assert names(data_dir / "blobs") == {f"{r.id}.age" for r in records}


_FILE_SIZE_LIMITED_CHILD = """
import resource, signal, sys
from pathlib import Path
from relay.errors import StorageError
from relay.store import SubmissionStore
store = SubmissionStore(Path(sys.argv[1]))
store.open()
# The OS refuses to let any file grow past 256 KiB, as a full disk would.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
try:
    with store.blob_writer() as writer:
        for _ in range(64):
            writer.write(bytes(16 * 1024))
        writer.commit("server")
except StorageError as error:
    print("refused:", error)
store.close()
"""


def test_a_write_the_os_refuses_is_a_storage_error_and_leaves_nothing(data_dir: Path):
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED_CHILD, str(data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.startswith("refused: The submission could not be stored: File too large")
    with SubmissionStore(data_dir) as store:
        assert store.list() == []
    assert names(data_dir / "tmp") == set()
    assert names(data_dir / "blobs") == set()


# --- reading, listing, deleting ---


def test_list_pages_through_all_submissions_by_id(store: SubmissionStore):
    ids = sorted(commit(store, bytes([i])).id for i in range(7))
    first = store.list(limit=3)
    second = store.list(after=first[-1].id, limit=3)
    third = store.list(after=second[-1].id, limit=3)
    assert [r.id for r in first + second + third] == ids
    # A cursor stays valid after its submission is deleted.
    store.delete(second[-1].id)
    assert [r.id for r in store.list(after=second[-1].id)] == ids[6:]


@pytest.mark.parametrize(
    ("after", "limit"), [("../../etc", 10), ("A" * 32, 10), (None, 0), (None, 1001)]
)
def test_list_refuses_bad_arguments(store: SubmissionStore, after: str | None, limit: int):
    with pytest.raises(ValueError):
        store.list(after=after, limit=limit)


def test_unknown_or_hostile_ids_find_nothing(store: SubmissionStore):
    for bad in ("../../relay.sqlite3", "0" * 31, "0" * 32 + "/x", "", "G" * 32):
        assert store.get(bad) is None
        assert store.delete(bad) is False
        with pytest.raises(ValueError):
            store.blob_path(bad)
        with pytest.raises(FileNotFoundError):
            store.open_blob(bad)
    assert store.get("0" * 32) is None


def test_delete_removes_row_and_blob(store: SubmissionStore, data_dir: Path):
    kept = commit(store, b"kept")
    gone = commit(store, b"gone")
    assert store.delete(gone.id) is True
    assert store.get(gone.id) is None
    assert names(data_dir / "blobs") == {f"{kept.id}.age"}
    assert store.delete(gone.id) is False


# --- retention ---


def test_purge_deletes_only_submissions_older_than_the_retention(data_dir: Path):
    with SubmissionStore(data_dir) as store:
        old = commit(store, b"old")
        edge = commit(store, b"exactly 30 days")
        new = commit(store, b"new")
    today = datetime.now(UTC).date()
    sql(data_dir, "UPDATE submissions SET day = ? WHERE id = ?",
        (today - timedelta(days=31)).isoformat(), old.id)
    sql(data_dir, "UPDATE submissions SET day = ? WHERE id = ?",
        (today - timedelta(days=30)).isoformat(), edge.id)
    with SubmissionStore(data_dir) as store:
        assert store.purge_older_than(30) == 1
        assert {r.id for r in store.list()} == {edge.id, new.id}
        assert names(data_dir / "blobs") == {f"{edge.id}.age", f"{new.id}.age"}
        assert store.purge_older_than(30) == 0
        with pytest.raises(ValueError):
            store.purge_older_than(-1)


# --- crash recovery, from leftover states made on disk ---


def test_recovery_removes_temp_files_orphan_blobs_and_rows_without_blob(
    data_dir: Path, captured_log: CapturedLog
):
    with SubmissionStore(data_dir) as store:
        intact = commit(store, b"intact")
        lost = commit(store, b"blob lost")
    # Crash states: a half-written temp file; a blob renamed but never given a
    # row; a stray file; a row whose blob vanished (e.g. removed by hand).
    (data_dir / "tmp" / "0123.tmp").write_bytes(b"half")
    orphan = data_dir / "blobs" / ("ab" * 16 + ".age")
    orphan.write_bytes(b"never acknowledged")
    (data_dir / "blobs" / "notes.txt").write_bytes(b"stray")
    (data_dir / "blobs" / f"{lost.id}.age").unlink()

    with SubmissionStore(data_dir) as store:
        assert names(data_dir / "tmp") == set()
        assert names(data_dir / "blobs") == {f"{intact.id}.age"}
        assert [r.id for r in store.list()] == [intact.id]
        assert store.get(lost.id) is None
    errors = [e for e in captured_log.events if e["level"] == "error"]
    assert errors == [
        {
            "event": "store_row_without_blob_removed",
            "level": "error",
            "logger": "relay.store",
            "component": "store",
            "submission_id": lost.id,
        }
    ]
    assert any(e["event"] == "store_removed_temporary_files" for e in captured_log.events)


def test_recovery_repairs_uploads(data_dir: Path):
    with SubmissionStore(data_dir) as store:
        longer = store.create_upload(100)
        store.append_upload(longer.id, 0, b"a" * 40)
        shorter = store.create_upload(100)
        store.append_upload(shorter.id, 0, b"b" * 40)
        vanished = store.create_upload(100)
    # Bytes written after the last acknowledged offset (crash before the row
    # update), a file shorter than its row, a file gone, a file without a row.
    with (data_dir / "uploads" / f"{longer.id}.part").open("ab") as file:
        file.write(b"unacknowledged")
    os.truncate(data_dir / "uploads" / f"{shorter.id}.part", 25)
    (data_dir / "uploads" / f"{vanished.id}.part").unlink()
    (data_dir / "uploads" / ("cd" * 16 + ".part")).write_bytes(b"no row")

    with SubmissionStore(data_dir) as store:
        repaired = store.get_upload(longer.id)
        assert repaired is not None and repaired.offset == 40
        assert store.upload_path(longer.id).read_bytes() == b"a" * 40
        resumed = store.get_upload(shorter.id)
        assert resumed is not None and resumed.offset == 25
        assert store.get_upload(vanished.id) is None
        assert names(data_dir / "uploads") == {f"{longer.id}.part", f"{shorter.id}.part"}


_COMMITTING_CHILD = """
import os, sys
from pathlib import Path
from relay.store import SubmissionStore
store = SubmissionStore(Path(sys.argv[1]))
store.open()
while True:
    with store.blob_writer() as writer:
        writer.write(os.urandom(48 * 1024))
        record = writer.commit("server")
    print(record.id, flush=True)  # the acknowledgement
"""


def _run_and_kill(code: str, data_dir: Path, acknowledgements: int) -> list[str]:
    """Run ``code`` in a child, SIGKILL it after enough acknowledgements; all of them."""
    child = popen(
        [sys.executable, "-c", code, str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    try:
        while len(lines) < acknowledgements:
            line = child.stdout.readline()
            assert line, "the child stopped early"
            lines.append(line.strip())
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        lines += child.stdout.read().split()
    finally:
        kill_process(child)  # also when the child stopped early or a read failed
    return [line for line in lines if line]


def test_killed_while_committing_every_acknowledged_submission_survives(data_dir: Path):
    acknowledged = _run_and_kill(_COMMITTING_CHILD, data_dir, acknowledgements=25)
    acknowledged = [a for a in acknowledged if re.fullmatch(r"[0-9a-f]{32}", a)]
    with SubmissionStore(data_dir) as store:
        rows = {r.id: r for r in store.list(limit=1000)}
        assert set(acknowledged) <= set(rows)
        # At most the one in flight got its row without being acknowledged.
        assert len(rows) - len(acknowledged) <= 1
        for record in rows.values():
            blob = store.blob_path(record.id).read_bytes()
            assert hashlib.sha256(blob).hexdigest() == record.sha256
            assert len(blob) == record.size
        assert names(data_dir / "blobs") == {f"{i}.age" for i in rows}
        assert names(data_dir / "tmp") == set()


_UPLOADING_CHILD = """
import sys
from pathlib import Path
from relay.store import SubmissionStore
store = SubmissionStore(Path(sys.argv[1]))
store.open()
data = bytes(i % 251 for i in range(4 << 20))
upload = store.create_upload(len(data))
print(upload.id, flush=True)
offset = 0
while offset < len(data):
    offset = store.append_upload(upload.id, offset, data[offset : offset + 16384])
    print(offset, flush=True)  # the acknowledgement (a PATCH response)
"""


def test_killed_while_appending_every_acknowledged_offset_survives(data_dir: Path):
    lines = _run_and_kill(_UPLOADING_CHILD, data_dir, acknowledgements=20)
    upload_id, offsets = lines[0], [int(x) for x in lines[1:] if x.isdigit()]
    data = bytes(i % 251 for i in range(4 << 20))
    with SubmissionStore(data_dir) as store:
        upload = store.get_upload(upload_id)
        assert upload is not None
        assert upload.offset >= max(offsets)
        assert store.upload_path(upload_id).read_bytes() == data[: upload.offset]


# --- resumable uploads ---


def test_upload_expiry_is_an_hour_and_at_least_the_configured_time(data_dir: Path):
    with SubmissionStore(data_dir, upload_expiry_hours=2) as store:
        before = datetime.now(UTC)
        upload = store.create_upload(10)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", upload.expires_day_hour)
    expires = datetime.strptime(upload.expires_day_hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    assert timedelta(hours=2) <= expires - before <= timedelta(hours=3)
    assert sql(data_dir, "SELECT expires_day_hour FROM uploads") == [(upload.expires_day_hour,)]


def test_append_checks_the_offset_and_the_declared_length(store: SubmissionStore):
    upload = store.create_upload(10)
    assert store.get_upload(upload.id) == upload
    assert store.append_upload(upload.id, 0, b"12345") == 5
    with pytest.raises(UploadOffsetError) as caught:
        store.append_upload(upload.id, 0, b"12345")  # a replayed PATCH
    assert caught.value.expected == 5
    with pytest.raises(UploadOffsetError):
        store.append_upload(upload.id, 7, b"x")  # a gap
    with pytest.raises(LimitExceededError):
        store.append_upload(upload.id, 5, b"678901")  # past the declared length
    assert store.upload_path(upload.id).read_bytes() == b"12345"
    assert store.append_upload(upload.id, 5, b"") == 5
    assert store.append_upload(upload.id, 5, b"67890") == 10
    current = store.get_upload(upload.id)
    assert current is not None and current.offset == 10
    with pytest.raises(UploadNotFoundError):
        store.append_upload("ef" * 16, 0, b"x")


def test_concurrent_appends_at_one_offset_accept_exactly_one(store: SubmissionStore):
    upload = store.create_upload(1000)
    outcomes: list[str] = []

    def append() -> None:
        try:
            store.append_upload(upload.id, 0, b"z" * 100)
            outcomes.append("ok")
        except UploadOffsetError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=append) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["ok"]
    assert store.upload_path(upload.id).read_bytes() == b"z" * 100


def test_finished_upload_becomes_a_submission(store: SubmissionStore, data_dir: Path):
    upload = store.create_upload(6)
    store.append_upload(upload.id, 0, b"abc")
    with pytest.raises(StorageError, match="incomplete"):
        store.finish_upload(upload.id, "browser")
    store.append_upload(upload.id, 3, b"def")
    record = store.finish_upload(upload.id, "browser")
    assert (record.size, record.sealed_by) == (6, "browser")
    assert record.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert store.blob_path(record.id).read_bytes() == b"abcdef"
    assert store.get_upload(upload.id) is None
    assert names(data_dir / "uploads") == set()
    with pytest.raises(UploadNotFoundError):
        store.finish_upload(upload.id, "browser")


def test_expired_uploads_are_gone_and_purged(data_dir: Path):
    with SubmissionStore(data_dir) as store:
        expired = store.create_upload(10)
        store.append_upload(expired.id, 0, b"12")
        alive = store.create_upload(10)
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    sql(data_dir, "UPDATE uploads SET expires_day_hour = ? WHERE id = ?", past, expired.id)
    with SubmissionStore(data_dir) as store:
        assert store.get_upload(expired.id) is None
        with pytest.raises(UploadNotFoundError):
            store.append_upload(expired.id, 2, b"34")
        assert store.purge_expired_uploads() == 1
        assert names(data_dir / "uploads") == {f"{alive.id}.part"}
        assert sql(data_dir, "SELECT id FROM uploads") == [(alive.id,)]
        assert store.purge_expired_uploads() == 0


def test_delete_upload_removes_row_and_file(store: SubmissionStore, data_dir: Path):
    upload = store.create_upload(10)
    assert store.delete_upload(upload.id) is True
    assert store.get_upload(upload.id) is None
    assert names(data_dir / "uploads") == set()
    assert store.delete_upload(upload.id) is False
    assert store.delete_upload("../x") is False
    for bad_length in (0, -1, True):
        with pytest.raises(ValueError):
            store.create_upload(bad_length)


# --- migrations ---


def test_migrations_are_recorded_once_and_reopening_changes_nothing(data_dir: Path):
    with SubmissionStore(data_dir):
        pass
    recorded = [row[0] for row in sql(data_dir, "SELECT name FROM migrations ORDER BY name")]
    assert recorded == sorted(m.__name__ for m in MIGRATIONS)
    with SubmissionStore(data_dir) as store:
        assert run_migrations(store.sqlite()) == []
    assert len(sql(data_dir, "SELECT name FROM migrations")) == len(MIGRATIONS)


def test_a_failing_migration_is_rolled_back_and_not_recorded(tmp_path: Path):
    db = Database(sqlite3.connect(tmp_path / "m.sqlite3"), execute_plugins=False)

    def add_notes_table(db: Database) -> None:
        db.execute("CREATE TABLE notes (text TEXT)")

    def break_halfway(db: Database) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("migration bug")

    assert run_migrations(db, [add_notes_table]) == ["add_notes_table"]
    with pytest.raises(RuntimeError):
        run_migrations(db, [add_notes_table, break_halfway])
    assert "half" not in db.table_names()
    assert [r["name"] for r in db.query("SELECT name FROM migrations")] == ["add_notes_table"]
    db.close()


# --- health and metadata ---


def test_health_reports_a_broken_data_folder(store: SubmissionStore, data_dir: Path):
    store.check_health()
    (data_dir / "tmp").rmdir()
    with pytest.raises(StorageError):
        store.check_health()
    store.close()
    with pytest.raises(StorageError, match="not open"):
        store.check_health()


def test_nothing_stored_has_a_time_of_day(store: SubmissionStore, data_dir: Path):
    commit(store, b"x")
    upload = store.create_upload(10)
    store.append_upload(upload.id, 0, b"12345")
    store.close()
    connection = sqlite3.connect(data_dir / "relay.sqlite3")
    tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    values = [
        value
        for table in tables
        for row in connection.execute(f'SELECT * FROM "{table}"')
        for value in row
    ]
    connection.close()
    assert values
    for value in values:
        assert not re.search(r"\d{1,2}:\d{2}", str(value)), value
    days = [v for v in values if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)]
    assert days == [datetime.now(UTC).date().isoformat()]


def test_blob_file_times_show_only_the_day(store: SubmissionStore):
    from_writer = commit(store, b"sealed by the server")
    upload = store.create_upload(3)
    store.append_upload(upload.id, 0, b"abc")
    from_upload = store.finish_upload(upload.id, "browser")
    for record in (from_writer, from_upload):
        stat = store.blob_path(record.id).stat()
        midnight = datetime.fromisoformat(record.day).replace(tzinfo=UTC).timestamp()
        assert stat.st_mtime == stat.st_atime == midnight


def test_a_database_migrated_by_a_newer_release_is_refused_and_left_as_it_is(data_dir: Path):
    """A rolled-back upgrade: the older release must not open a schema it does not know."""
    with SubmissionStore(data_dir) as store:
        store.sqlite().execute("INSERT INTO migrations (name) VALUES ('add_a_future_column')")
    before = sql(data_dir, "SELECT name FROM migrations ORDER BY name")
    with pytest.raises(StorageError) as refused:
        SubmissionStore(data_dir).open()
    message = str(refused.value)
    assert "newer tiprelay release" in message and "add_a_future_column" in message
    assert "docs/operators.md" in message and "Upgrade" in message
    assert sql(data_dir, "SELECT name FROM migrations ORDER BY name") == before
