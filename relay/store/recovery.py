"""Crash recovery, run when a store opens: make files and rows agree again.

Every write puts the file in place before its row, and every delete removes
the row before the file, so after a crash: anything in tmp/ was never
acknowledged; a blob without a row was never acknowledged (or was being
deleted); a row without its file lost it outside the relay (logged). Upload
files are cut back to the offset their row acknowledged.
"""

from __future__ import annotations

import os
from pathlib import Path

from relay.files import fsync_directory
from relay.log import get_logger
from relay.store.blobs import remove_path
from relay.store.replies import REPLY_BLOB_NAME, ReplySlots
from relay.store.submissions import BLOB_NAME, Submissions
from relay.store.uploads import PART_NAME, UploadRecord, Uploads, upload_record

_log = get_logger("relay.store")


def recover(tmp_dir: Path, submissions: Submissions, uploads: Uploads, replies: ReplySlots) -> None:
    """Remove what a crash left half-done, in every folder of the data folder."""
    removed = 0
    for leftover in tmp_dir.iterdir():
        remove_path(leftover)
        removed += 1
    if removed:
        _log.warning("store_removed_temporary_files", component="store", count=removed)
    _recover_submissions(submissions)
    _recover_uploads(uploads)
    _recover_replies(replies)
    for folder in (tmp_dir, submissions.blobs_dir, uploads.uploads_dir, replies.replies_dir):
        fsync_directory(folder)


def _recover_submissions(submissions: Submissions) -> None:
    with submissions.database.connection() as db:
        row_ids = {row["id"] for row in db.query("SELECT id FROM submissions")}
    present: set[str] = set()
    removed = 0
    for path in submissions.blobs_dir.iterdir():
        match = BLOB_NAME.fullmatch(path.name)
        if match is not None and match.group(1) in row_ids and path.is_file():
            present.add(match.group(1))
            continue
        # Never acknowledged (the crash came before its row), or not ours.
        remove_path(path)
        removed += 1
    if removed:
        _log.warning("store_removed_blobs_without_row", component="store", count=removed)
    for missing in sorted(row_ids - present):
        with submissions.database.connection() as db:
            db.execute("DELETE FROM submissions WHERE id = ?", [missing])
        _log.error("store_row_without_blob_removed", component="store", submission_id=missing)


def _recover_uploads(uploads: Uploads) -> None:
    with uploads.database.connection() as db:
        rows = [upload_record(row) for row in db.query("SELECT * FROM uploads")]
    by_id = {row.id: row for row in rows}
    removed = 0
    for path in uploads.uploads_dir.iterdir():
        match = PART_NAME.fullmatch(path.name)
        if match is None or match.group(1) not in by_id or not path.is_file():
            remove_path(path)
            removed += 1
    if removed:
        _log.warning("store_removed_uploads_without_row", component="store", count=removed)
    for row in rows:
        _recover_upload(uploads, row)


def _recover_upload(uploads: Uploads, row: UploadRecord) -> None:
    part = uploads.path(row.id)
    if not part.is_file():
        with uploads.database.connection() as db:
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
        with uploads.database.connection() as db:
            db.execute('UPDATE uploads SET "offset" = ? WHERE id = ?', [size, row.id])
        _log.error("store_upload_shorter_than_recorded", component="store", upload_id=row.id)


def _recover_replies(replies: ReplySlots) -> None:
    # Logged by count only: a slot's tag must never reach a log line.
    with replies.database.connection() as db:
        blobs = {str(row["blob"]) for row in db.query("SELECT blob FROM reply_slots")}
    present: set[str] = set()
    removed = 0
    for path in replies.replies_dir.iterdir():
        match = REPLY_BLOB_NAME.fullmatch(path.name)
        if match is not None and match.group(1) in blobs and path.is_file():
            present.add(match.group(1))
            continue
        remove_path(path)
        removed += 1
    if removed:
        _log.warning("store_removed_replies_without_row", component="store", count=removed)
    missing = sorted(blobs - present)
    if missing:
        with replies.database.connection() as db, db.atomic():
            for blob in missing:
                db.execute("DELETE FROM reply_slots WHERE blob = ?", [blob])
        _log.error("store_reply_rows_without_file_removed", component="store", count=len(missing))
