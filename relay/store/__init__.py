"""Where ciphertext lives: one SQLite file (rows) plus one file per stored item.

Layout of ``data_dir`` (folders 0700, files 0600)::

    relay.sqlite3          rows: submissions, uploads, reply slots, migrations, and
                           the digest's arrival counter (one number)
    relay.sqlite3-journal  SQLite's rollback journal: empty between transactions
    blobs/<id>.age         one committed submission, exactly the age file received
    replies/<random>.age   one reply in a slot (the file name is not the slot's tag)
    tmp/                   files being written; anything here after a crash is removed
    uploads/<id>.part      resumable (tus) uploads in progress
    lock                   held while a store is open: one relay per data folder

One module per job:

    database.py     the SQLite connection, its pragmas and lock
    migrations.py   the schema as named migrations, and their runner
    blobs.py        durable temporary files, ids, days, file-time blurring
    submissions.py  submissions: rows, blobs/, group commit, retention
    uploads.py      resumable uploads, and turning a finished one into a submission
    replies.py      reply slots: compare-and-swap, delete tokens, retention
    recovery.py     crash recovery when a store opens
    data_folder.py  SubmissionStore: the folder, its lock, the blur, health, the parts

What a seized disk shows is kept to the day. Rows have the UTC day, uploads an
expiry rounded to the hour. SQLite runs with a rollback journal truncated at
every commit and ``secure_delete`` (see database.py). A blob's access and
modification times are midnight of its day; ``blur_file_times`` (run
periodically by the server) floors every file's and folder's times to
midnight and so sets all their change times to the moment of that run (see
relay.file_times). Blobs and replies are read with ``O_NOATIME``.

Every method blocks; the server calls the slow ones through ``asyncio.to_thread``.
"""

from relay.store.blobs import TemporaryBlob, is_valid_id
from relay.store.data_folder import SubmissionStore
from relay.store.database import DB_NAME, JOURNAL_MODE
from relay.store.migrations import MIGRATIONS, Migration, run_migrations
from relay.store.replies import (
    DELETE_TOKEN_BYTES,
    TAG_BYTES,
    ReplySlot,
    delete_token_hash,
    is_valid_sha256,
    is_valid_tag,
)
from relay.store.submissions import (
    MAX_LIST_LIMIT,
    SEALED_BY,
    STATE_STORED,
    BlobWriter,
    SubmissionRecord,
)
from relay.store.uploads import UploadRecord

__all__ = [
    "DB_NAME",
    "DELETE_TOKEN_BYTES",
    "JOURNAL_MODE",
    "MAX_LIST_LIMIT",
    "MIGRATIONS",
    "SEALED_BY",
    "STATE_STORED",
    "TAG_BYTES",
    "BlobWriter",
    "Migration",
    "ReplySlot",
    "SubmissionRecord",
    "SubmissionStore",
    "TemporaryBlob",
    "UploadRecord",
    "delete_token_hash",
    "is_valid_id",
    "is_valid_sha256",
    "is_valid_tag",
    "run_migrations",
]
