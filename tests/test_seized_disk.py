"""What a disk seized from a running relay shows: no deleted rows, no journal history,
no arrival times in file times, no access times from reviewers' downloads.

Everything runs on real files: a real ``tiprelay serve`` over loopback HTTP, or a
real SubmissionStore on a real SQLite file, and every file of the data folder
is searched byte for byte, as a forensic examiner would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey
from relay.store import SubmissionRecord, SubmissionStore
from tests.support_openpgp import add_openpgp_reviewer, gpg_reviewer_home
from tests.support_reviewer import list_ids, send, signed, signed_headers, submit_form
from tests.support_server import RelayServer, new_relay, running_relay

REPO = Path(__file__).resolve().parent.parent
LIST = "/api/v1/submissions"
_WAIT_SECONDS = 15.0


def every_path(data_dir: Path) -> list[Path]:
    """The data folder itself and everything in it, files and folders."""
    return [data_dir, *sorted(data_dir.rglob("*"))]


def files_holding(data_dir: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """For each needle found, the files of the data folder (any kind) that hold its bytes."""
    found: dict[str, list[str]] = {}
    for path in every_path(data_dir):
        if not path.is_file():
            continue
        content = path.read_bytes()
        for label, needle in needles.items():
            if needle in content:
                found.setdefault(label, []).append(path.name)
    return found


def traces_of(submission_id: str, sha256_hex: str) -> dict[str, bytes]:
    """Every form in which a submission's id and hash could sit in a file."""
    return {
        f"id {submission_id}": submission_id.encode(),
        f"raw id {submission_id}": bytes.fromhex(submission_id),
        f"sha256 {sha256_hex}": sha256_hex.encode(),
        f"raw sha256 {sha256_hex}": bytes.fromhex(sha256_hex),
    }


def assert_journal_holds_no_history(data_dir: Path) -> None:
    """No write-ahead log at all; the rollback journal, if present, is empty between writes."""
    names = {path.name for path in data_dir.iterdir()}
    assert "relay.sqlite3-wal" not in names
    assert "relay.sqlite3-shm" not in names
    journal = data_dir / "relay.sqlite3-journal"
    assert not journal.exists() or journal.stat().st_size == 0


def midnight_of(day: str) -> int:
    """Midnight UTC of ``day`` in nanoseconds since the epoch."""
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def commit(store: SubmissionStore, data: bytes) -> SubmissionRecord:
    with store.blob_writer() as writer:
        writer.write(data)
        return writer.commit("server")


@pytest.fixture
def api_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def relay(tmp_path: Path, api_key: SigningKey) -> Iterator[RelayServer]:
    with running_relay(tmp_path / "relay", api_key_text=api_key.public_key_text) as server:
        yield server


def stored_entries(relay: RelayServer, api_key: SigningKey) -> dict[str, str]:
    """id -> sha256 of every stored submission, as the reviewer API lists them."""
    answer = signed(relay.url, "GET", LIST + "?limit=1000", api_key)
    assert answer.status == 200, answer
    document = answer.json()
    assert isinstance(document, dict)
    return {entry["id"]: entry["sha256"] for entry in document["submissions"]}


# --- item 4: deleted rows and the SQLite journal ---


def test_a_submission_deleted_by_a_reviewer_is_in_no_file_while_the_relay_runs(
    relay: RelayServer, api_key: SigningKey
) -> None:
    for number in range(5):
        submit_form(relay.url, f"tip number {number}", [(f"f{number}.bin", os.urandom(2000))])
    entries = stored_entries(relay, api_key)
    assert len(entries) == 5
    victim, *kept = sorted(entries)
    assert signed(relay.url, "DELETE", f"{LIST}/{victim}", api_key).status == 204
    assert victim not in list_ids(relay.url, api_key)

    assert relay.proc is not None and relay.proc.poll() is None  # still running
    assert files_holding(relay.data_dir, traces_of(victim, entries[victim])) == {}
    assert_journal_holds_no_history(relay.data_dir)
    # The search does find what is still stored (so an empty result above means something).
    survivor = kept[0]
    found = files_holding(relay.data_dir, traces_of(survivor, entries[survivor]))
    assert found[f"id {survivor}"] == ["relay.sqlite3"]
    assert found[f"sha256 {entries[survivor]}"] == ["relay.sqlite3"]


def test_many_deletions_across_btree_pages_leave_no_trace(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    chooser = random.Random(13)
    with SubmissionStore(data_dir) as store:
        # About 30 rows fill a page: this many split the table into several.
        records = [commit(store, os.urandom(64)) for _ in range(100)]
        assert store.sqlite().execute("PRAGMA page_count").fetchone()[0] >= 8
        doomed = chooser.sample(records, 40)
        for record in doomed[:20]:
            assert store.delete(record.id)
        # Retention deletes the others in one transaction: make them look old.
        store.sqlite().execute(
            "UPDATE submissions SET day = '2000-01-01' WHERE id IN ("
            + ",".join("?" * 20)
            + ")",
            [record.id for record in doomed[20:]],
        )
        assert store.purge_older_than(30) == 20
        for record in doomed:
            found = files_holding(data_dir, traces_of(record.id, record.sha256))
            assert found == {}, record.id
        assert_journal_holds_no_history(data_dir)
        remaining = {record.id for record in store.list(limit=1000)}
    assert remaining == {record.id for record in records} - {record.id for record in doomed}


def test_a_finished_upload_leaves_no_hour_beside_the_submission_it_became(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with SubmissionStore(data_dir) as store:
        upload = store.create_upload(5)
        store.append_upload(upload.id, 0, b"abcde")
        record = store.finish_upload(upload.id, "browser")
        found = files_holding(
            data_dir,
            {
                "upload id": upload.id.encode(),
                "upload hour": upload.expires_day_hour.encode(),
            },
        )
        assert found == {}
        assert_journal_holds_no_history(data_dir)
        assert store.get(record.id) == record


def test_the_database_keeps_a_rollback_journal_and_full_sync(tmp_path: Path) -> None:
    with SubmissionStore(tmp_path / "data") as store:
        commit(store, b"x")
        assert store.sqlite().execute("PRAGMA journal_mode").fetchone() == ("truncate",)
        assert store.sqlite().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert store.sqlite().execute("PRAGMA secure_delete").fetchone() == (1,)


def test_a_database_left_in_wal_mode_is_converted_without_losing_rows(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SubmissionStore(data_dir) as store:
        kept = commit(store, b"kept")
    # A relay of the previous version, killed with its write-ahead log full.
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('PRAGMA journal_mode=WAL')\n"
            "c.execute(\"INSERT INTO submissions VALUES ('\" + 'a' * 32 + \"', '2026-01-01', 1, '\""
            " + 'b' * 64 + \"', 'server', 'stored')\")\n"
            "os._exit(0)\n",
            str(data_dir / "relay.sqlite3"),
        ],
        capture_output=True,
        timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert child.returncode == 0, child.stderr
    assert (data_dir / "relay.sqlite3-wal").stat().st_size > 0
    (data_dir / "blobs" / ("a" * 32 + ".age")).write_bytes(b"x")
    with SubmissionStore(data_dir) as store:
        assert {record.id for record in store.list()} == {kept.id, "a" * 32}
        assert_journal_holds_no_history(data_dir)


# --- item 5: change times, folder times, access times ---


def file_system_now_ns(scratch: Path) -> int:
    """The file system's clock now: the change time of a file touched now.

    The kernel stamps change times from a coarse clock that may lag
    ``time.time_ns()`` by a few milliseconds; compare like with like.
    """
    scratch.write_bytes(b"")
    os.utime(scratch)
    return scratch.stat().st_ctime_ns


def _times_are_blurred(paths: list[Path], not_before_ns: int) -> list[str]:
    """What is wrong with these paths' times (empty when all is blurred).

    Only ``stat`` here: listing a folder would itself stamp its access time,
    so callers list the paths once, before the blur.
    """
    problems: list[str] = []
    stats = {path: path.stat() for path in paths}
    change_times = [stat.st_ctime_ns for stat in stats.values()]
    if min(change_times) < not_before_ns:
        problems.append("a change time is older than the blur run")
    if max(change_times) - min(change_times) >= 1_000_000_000:
        problems.append("change times differ by a second or more")
    for path, stat in stats.items():
        day = datetime.fromtimestamp(stat.st_mtime, UTC).date().isoformat()
        if not stat.st_mtime_ns == stat.st_atime_ns == midnight_of(day):
            problems.append(f"{path.name}: times not at midnight")
    return problems


def test_a_blur_run_gives_every_file_and_folder_one_change_time_and_midnight(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with SubmissionStore(data_dir) as store:
        records = [commit(store, os.urandom(100)) for _ in range(3)]
        upload = store.create_upload(10)
        store.append_upload(upload.id, 0, b"12345")
        assert store.delete(records[0].id)
        with store.reply_writer() as reply:
            reply.write(os.urandom(200))
            slot = store.put_reply("ab" * 32, None, "cd" * 32, reply)
        paths = every_path(data_dir)
        # 5 folders, 2 blobs, 1 part, 1 reply, database, journal, lock
        assert len(paths) == 12
        time.sleep(0.05)  # arrivals and the blur are measurably apart
        before = file_system_now_ns(tmp_path / "clock")
        store.blur_file_times()
        after = file_system_now_ns(tmp_path / "clock")
        assert _times_are_blurred(paths, before) == []
        assert max(path.stat().st_ctime_ns for path in paths) <= after
        for record in records[1:]:
            stat = store.blob_path(record.id).stat()
            assert stat.st_mtime_ns == stat.st_atime_ns == midnight_of(record.day)
        (reply_file,) = (data_dir / "replies").iterdir()
        assert reply_file.stat().st_mtime_ns == midnight_of(slot.day)


@pytest.mark.parametrize("team", ["age", "age and OpenPGP"])
def test_the_running_relay_blurs_change_times_on_its_period(
    tmp_path: Path, api_key: SigningKey, team: str
) -> None:
    settings = {"file_times_blur_seconds": 1}
    with contextlib.ExitStack() as stack:
        relay = new_relay(tmp_path / "relay", settings, api_key_text=api_key.public_key_text)
        if team == "age and OpenPGP":  # the relay's gpg home is in the data folder too
            olga = stack.enter_context(gpg_reviewer_home())
            add_openpgp_reviewer(relay.keys_dir, "olga", olga)
        relay.start()
        stack.callback(relay.stop)
        if team == "age and OpenPGP":
            assert (relay.data_dir / "openpgp-keyring").is_dir()
        for number in range(3):
            submit_form(relay.url, f"tip {number}", [("a.bin", os.urandom(500))])
        paths = every_path(relay.data_dir)
        last_arrival = file_system_now_ns(tmp_path / "clock")
        deadline = time.monotonic() + _WAIT_SECONDS
        problems = _times_are_blurred(paths, last_arrival)
        while problems and time.monotonic() < deadline:
            time.sleep(0.2)
            problems = _times_are_blurred(paths, last_arrival)
        assert problems == []
        assert len(relay.blob_paths()) == 3


def test_a_reviewer_download_leaves_the_access_time_alone(
    tmp_path: Path, api_key: SigningKey
) -> None:
    # A daily blur (at midnight UTC) cannot reset the access time mid-test.
    settings = {"file_times_blur_seconds": 86400}
    with running_relay(
        tmp_path / "relay", settings, api_key_text=api_key.public_key_text
    ) as relay:
        submit_form(relay.url, "read me", [("a.bin", os.urandom(3000))])
        (submission_id,) = list_ids(relay.url, api_key)
        blob = relay.data_dir / "blobs" / f"{submission_id}.age"
        before = blob.stat().st_atime_ns
        path = f"{LIST}/{submission_id}"
        whole = signed(relay.url, "GET", path, api_key)
        assert whole.status == 200
        headers = {**signed_headers(relay.url, "GET", path, api_key), "Range": "bytes=10-"}
        part = send(relay.url, "GET", path, headers)
        assert part.status == 206
        assert part.body == whole.body[10:]
        size = len(whole.body)
        for wanted, status, body in (
            ("bytes=-5", 206, whole.body[-5:]),
            ("bytes=2-6", 206, whole.body[2:7]),
            (f"bytes={size}-", 416, b""),
        ):
            headers = {**signed_headers(relay.url, "GET", path, api_key), "Range": wanted}
            answer = send(relay.url, "GET", path, headers)
            assert (answer.status, answer.body) == (status, body), wanted
        assert answer.headers["Content-Range"] == f"bytes */{size}"
        assert blob.stat().st_atime_ns == before
        # The control: a plain read does move it on this file system.
        assert blob.read_bytes() == whole.body
        assert blob.stat().st_atime_ns != before, "this file system keeps no access times"


def test_reading_a_blob_through_the_store_keeps_its_access_time(tmp_path: Path) -> None:
    with SubmissionStore(tmp_path / "data") as store:
        record = commit(store, os.urandom(1000))
        blob = store.blob_path(record.id)
        before = blob.stat().st_atime_ns
        with store.open_blob(record.id) as opened:
            assert hashlib.sha256(opened.read()).hexdigest() == record.sha256
        assert blob.stat().st_atime_ns == before
        # The control: a plain read does move it on this file system.
        blob.read_bytes()
        assert blob.stat().st_atime_ns != before, "this file system does not update access times"


_NOT_OWNER_CHILD = """
import errno, os, sys
from pathlib import Path
from relay.file_times import open_without_atime
path = Path(sys.argv[1])
try:
    os.close(os.open(path, os.O_RDONLY | os.O_NOATIME))
except PermissionError as exc:
    assert exc.errno == errno.EPERM, exc
    print("refused", flush=True)
with open_without_atime(path) as opened:
    sys.stdout.write(opened.read().decode())
"""


def test_reading_falls_back_when_o_noatime_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "not-mine.age"
    target.write_bytes(b"ciphertext")
    if os.geteuid() == 0:
        # Root may always use O_NOATIME: give the file away and run the reader
        # without CAP_FOWNER, as a relay reading a file it does not own would.
        os.chown(target, 65534, 65534)
        command = ["setpriv", "--bounding-set", "-fowner", "--inh-caps", "-fowner", "--"]
    else:
        # Not root: a file owned by root stands in (O_NOATIME is refused the same way).
        target = Path("/etc/passwd")
        command = []
    result = subprocess.run(
        [*command, sys.executable, "-c", _NOT_OWNER_CHILD, str(target)],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.split(b"\n", 1)
    assert lines[0] == b"refused"
    assert lines[1] == target.read_bytes()


def test_blur_runs_are_aligned_to_the_clock_not_to_the_start() -> None:
    from relay.server.app import seconds_until_next_multiple

    assert seconds_until_next_multiple(3600, 7199.5) == 0.5
    assert seconds_until_next_multiple(3600, 7200.0) == 3600
    assert seconds_until_next_multiple(60, 61.25) == 58.75


def test_a_clean_stop_leaves_every_time_blurred(tmp_path: Path) -> None:
    # A daily period: only the run at stop can blur what arrives in this test.
    with running_relay(tmp_path / "relay", {"file_times_blur_seconds": 86400}) as relay:
        submit_form(relay.url, "just before the stop", [("a.bin", os.urandom(500))])
        paths = every_path(relay.data_dir)
        last_arrival = file_system_now_ns(tmp_path / "clock")
        assert _times_are_blurred(paths, last_arrival) != []  # the arrival shows, for now
    assert relay.proc is not None and relay.proc.returncode == 0
    assert _times_are_blurred(paths, last_arrival) == []
