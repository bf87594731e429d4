"""Reply slots in relay.store on real SQLite files and folders: the named migration,
compare-and-swap, retention, crash recovery, and what a seized disk keeps of them."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from relay.errors import ReplySlotChangedError
from relay.store import MIGRATIONS, ReplySlot, SubmissionStore, run_migrations
from tests.test_seized_disk import assert_journal_holds_no_history, files_holding, midnight_of


def put(
    store: SubmissionStore,
    tag: str,
    data: bytes,
    expects: str | None = None,
    token: bytes = b"\x07" * 32,
) -> ReplySlot:
    with store.reply_writer() as reply:
        reply.write(data)
        return store.put_reply(tag, expects, hashlib.sha256(token).hexdigest(), reply)


def sql(data_dir: Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(data_dir / "relay.sqlite3")
    try:
        with connection:
            return connection.execute(statement, params).fetchall()
    finally:
        connection.close()


def traces_of_reply(tag: str, sha256_hex: str, token_hash: str) -> dict[str, bytes]:
    return {
        "tag": tag.encode(),
        "raw tag": bytes.fromhex(tag),
        "sha256": sha256_hex.encode(),
        "raw sha256": bytes.fromhex(sha256_hex),
        "token hash": token_hash.encode(),
    }


def test_the_named_migration_adds_reply_slots_to_a_database_made_by_the_old_code(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "blobs").mkdir(parents=True)
    # The schema as the code before conversations made it: two migrations, one submission.
    old = Database(sqlite3.connect(data_dir / "relay.sqlite3"), execute_plugins=False)
    old_migrations = [
        m for m in MIGRATIONS if m.__name__ in ("create_submissions_table", "create_uploads_table")
    ]
    assert run_migrations(old, old_migrations) == [
        "create_submissions_table",
        "create_uploads_table",
    ]
    submission_id = "ab" * 16
    old.execute(
        "INSERT INTO submissions VALUES (?, '2026-01-02', 3, ?, 'server', 'stored')",
        [submission_id, "cd" * 32],
    )
    old.conn.commit()
    old.close()
    (data_dir / "blobs" / f"{submission_id}.age").write_bytes(b"abc")

    with SubmissionStore(data_dir) as store:
        assert store.get(submission_id) is not None
        slot = put(store, "ef" * 32, b"a reply")
        assert store.get_reply("ef" * 32) == slot
    recorded = {row[0] for row in sql(data_dir, "SELECT name FROM migrations")}
    assert "create_reply_slots_table" in recorded
    assert sql(data_dir, "SELECT id FROM submissions") == [(submission_id,)]


def test_compare_and_swap_keeps_the_slot_when_the_expected_hash_is_wrong(tmp_path: Path) -> None:
    with SubmissionStore(tmp_path / "data") as store:
        tag = "01" * 32
        first = put(store, tag, b"first")
        with pytest.raises(ReplySlotChangedError, match="pull, then reply again"):
            put(store, tag, b"second")
        with pytest.raises(ReplySlotChangedError):
            put(store, tag, b"second", expects="00" * 32)
        assert store.get_reply(tag) == first
        assert os.listdir(store.tmp_dir) == []
        second = put(store, tag, b"second", expects=first.sha256)
        with store.open_reply(tag) as blob:
            assert blob.read() == b"second"
        assert second.sha256 == hashlib.sha256(b"second").hexdigest()
        assert len(os.listdir(store.replies_dir)) == 1
        with pytest.raises(ReplySlotChangedError):  # an emptied slot no longer holds it
            store.delete_reply(tag)
            put(store, tag, b"third", expects=second.sha256)


def test_retention_empties_old_slots_and_keeps_recent_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_day = (datetime.now(UTC).date() - timedelta(days=15)).isoformat()
    with SubmissionStore(data_dir) as store:
        put(store, "0a" * 32, b"old reply")
        recent = put(store, "0b" * 32, b"recent reply")
        with store.database.connection() as db:
            db.execute("UPDATE reply_slots SET day = ? WHERE tag = ?", [old_day, "0a" * 32])
        assert store.purge_replies_older_than(14) == 1
        assert store.get_reply("0a" * 32) is None
        assert store.list_replies() == [recent]
        assert len(os.listdir(store.replies_dir)) == 1
        assert store.purge_replies_older_than(14) == 0


def test_the_running_relay_purges_replies_past_reply_retention_days(tmp_path: Path) -> None:
    from tests.support_server import new_relay

    relay = new_relay(tmp_path / "relay", {"reply_retention_days": 3})
    with SubmissionStore(relay.data_dir) as store:
        put(store, "0c" * 32, b"four days old")
        put(store, "0d" * 32, b"two days old")
        today = datetime.now(UTC).date()
        with store.database.connection() as db:
            for tag, age in (("0c" * 32, 4), ("0d" * 32, 2)):
                day = (today - timedelta(days=age)).isoformat()
                db.execute("UPDATE reply_slots SET day = ? WHERE tag = ?", [day, tag])
    relay.start()  # the retention task runs once at start, then hourly
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while sql(relay.data_dir, "SELECT count(*) FROM reply_slots") != [(1,)]:
            assert datetime.now(UTC) < deadline, relay.log_text()
            time.sleep(0.1)
    finally:
        relay.stop()
    assert sql(relay.data_dir, "SELECT tag FROM reply_slots") == [("0d" * 32,)]
    assert len(os.listdir(relay.data_dir / "replies")) == 1


def test_a_deleted_or_replaced_reply_leaves_no_tag_and_no_hash_in_any_file(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    token = os.urandom(32)
    token_hash = hashlib.sha256(token).hexdigest()
    with SubmissionStore(data_dir) as store:
        slots = [put(store, os.urandom(32).hex(), os.urandom(500), token=token)]
        slots += [put(store, os.urandom(32).hex(), os.urandom(500)) for _ in range(7)]
        deleted, replaced, kept = slots[0], slots[1], slots[2]
        assert store.delete_reply_with_token(deleted.tag, os.urandom(32)) is False
        assert store.delete_reply_with_token(deleted.tag, token) is True
        new = put(store, replaced.tag, os.urandom(500), expects=replaced.sha256, token=b"\x09" * 32)
        # File times say only the day (checked before the search below reads every file),
        # and no file name in replies/ holds a tag.
        for name in os.listdir(store.replies_dir):
            stat = (store.replies_dir / name).stat()
            assert stat.st_mtime_ns == stat.st_atime_ns == midnight_of(kept.day)
            assert not any(slot.tag[:32] in name for slot in slots)

        gone = files_holding(data_dir, traces_of_reply(deleted.tag, deleted.sha256, token_hash))
        assert gone == {}
        old_hash = {"old sha256": replaced.sha256.encode(), "raw": bytes.fromhex(replaced.sha256)}
        assert files_holding(data_dir, old_hash) == {}
        assert_journal_holds_no_history(data_dir)
        # The same search finds what is still stored, so the empty results above mean something.
        kept_token_hash = hashlib.sha256(b"\x07" * 32).hexdigest()
        found = files_holding(data_dir, traces_of_reply(kept.tag, kept.sha256, kept_token_hash))
        assert found["tag"] == ["relay.sqlite3"] and found["sha256"] == ["relay.sqlite3"]
        assert found["token hash"] == ["relay.sqlite3"]
        assert files_holding(data_dir, {"new": new.sha256.encode()}) == {"new": ["relay.sqlite3"]}


def test_recovery_removes_reply_files_without_rows_and_rows_without_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SubmissionStore(data_dir) as store:
        lost = put(store, "1a" * 32, b"its file will vanish")
        kept = put(store, "1b" * 32, b"stays")
    (lost_blob,) = sql(data_dir, "SELECT blob FROM reply_slots WHERE tag = ?", lost.tag)[0]
    (data_dir / "replies" / f"{lost_blob}.age").unlink()
    stray = data_dir / "replies" / f"{'f' * 32}.age"
    stray.write_bytes(b"written before a crash, never recorded")
    with SubmissionStore(data_dir) as store:
        assert store.get_reply(lost.tag) is None
        assert store.get_reply(kept.tag) == kept
        assert not stray.exists()
        assert len(os.listdir(store.replies_dir)) == 1
