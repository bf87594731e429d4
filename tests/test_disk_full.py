"""A relay whose disk fills up: clear 507s, nothing half-written, and recovery.

The relay's data folder is a small tmpfs this test mounts (CI runs as root;
without root or mount the test fails and says so, it never skips). It is
filled with no-JS submissions and tus uploads through the real server, then
squeezed with a ballast file so that writes meet a truly full disk (ENOSPC),
not only the free-space checks. Throughout: every refusal is a 507 with the
relay's message, tmp/ holds no leftovers, every blob has its row and every
row its blob, and every acknowledged submission decrypts with the reviewer's
identity. Then the file system is remounted bigger and the relay takes new
submissions, and the interrupted upload resumes to a receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import io
import os
import sqlite3
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from relay.container.writer import build_archive
from relay.store import DB_NAME
from tests.support_forms import FilePart, Form, submit_form
from tests.support_server import RelayServer, running_relay

pytestmark = pytest.mark.slow

SMALL_FS_MIB = 8
BIGGER_FS_MIB = 64
GROWTH_MIB = 8
ATTACHMENT_BYTES = 256 * 1024
MAX_FILL_SUBMISSIONS = 64
MAX_UPLOADS = 32
UPLOAD_ATTACHMENT_BYTES = 512 * 1024
FREE_SPACE_CACHE_SECONDS = 0.6  # the relay asks the OS for free space at most every 0.5 s
SQUEEZE_MARGINS = (96, 64, 48, 32, 24, 16, 12, 8, 4, 0)  # KiB left free by the ballast
NO_JS_FULL_MESSAGE = "running out of storage space"
TUS_FULL_MESSAGE = "The relay is running out of storage space; try again later."
ENOSPC_ATTEMPTS = 3
MIDWAY_BYTES = 64 * 1024
ENOSPC_MESSAGE_BYTES = 256 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PENDING_MESSAGE = "an upload begun before the disk filled"


# --- the small file system ------------------------------------------------------------


@contextlib.contextmanager
def small_file_system(mount_point: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of ``size_mib`` MiB at ``mount_point``, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.fail("test_disk_full mounts a small tmpfs and must run as root (CI does)")
    mount_point.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True, text=True, timeout=30,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {mount_point} (needs root and mount): "
                    f"{mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def remount(mount_point: Path, size_mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mib}m", str(mount_point)],
                   check=True, capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill_leaving(ballast: Path, mount_point: Path, margin: int) -> None:
    """Grow or shrink ``ballast`` so that about ``margin`` bytes stay free."""
    size = ballast.stat().st_size if ballast.exists() else 0
    target = max(0, size + free_bytes(mount_point) - margin)
    with ballast.open("ab") as out:
        out.truncate(min(size, target))
        out.seek(0, os.SEEK_END)
        chunk = bytes(64 * 1024)
        for _ in range(1 + target // len(chunk)):
            wanted = target - out.tell()
            if wanted <= 0:
                break
            try:
                out.write(chunk[:wanted])
                out.flush()
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break


# --- talking to the relay -----------------------------------------------------------


@dataclass
class Ledger:
    """What the relay acknowledged, and what it refused, in this test."""

    acknowledged: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    no_js_until_507: int = 0
    uploads_until_507: int = 0


def post_form(relay: RelayServer, message: str, attachment: bytes = b"") -> int:
    """POST /submit as a browser without JavaScript; checks a 507's message."""
    files = [FilePart("evidence.bin", attachment)] if attachment else []
    response = asyncio.run(submit_form(relay.port, Form(message=message, files=files, lang="en")))
    assert response.status in (303, 507), (response.status, response.text[:500])
    if response.status == 507:
        assert NO_JS_FULL_MESSAGE in response.text
    return response.status


def request(
    relay: RelayServer, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def assert_tus_507(status: int, body: bytes) -> None:
    assert status == 507, (status, body[:300])
    assert TUS_FULL_MESSAGE in body.decode(), body[:300]


def sealed_submission(relay: RelayServer, message: str, work_dir: Path) -> bytes:
    """A submission archive sealed by the stock ``age`` to the relay's reviewer."""
    plain = work_dir / "plain.tar"
    plain.write_bytes(build_archive(message, [("photo.jpg", os.urandom(UPLOAD_ATTACHMENT_BYTES))],
                                    sealed_by="browser"))
    result = subprocess.run(["age", "-r", relay.recipient, str(plain)],
                            check=True, capture_output=True, timeout=60)
    return result.stdout


def create_upload(relay: RelayServer, length: int) -> tuple[int, str, bytes]:
    status, headers, body = request(relay, "POST", "/api/v1/uploads",
                                    {**TUS, "Upload-Length": str(length)})
    location = urlsplit(headers.get("location", "")).path
    return status, location, body


def patch(
    relay: RelayServer, location: str, offset: int, data: bytes
) -> tuple[int, dict[str, str], bytes]:
    headers = {**TUS, "Content-Type": "application/offset+octet-stream",
               "Upload-Offset": str(offset)}
    return request(relay, "PATCH", location, headers, data)


# --- what must hold at every moment -----------------------------------------------------


def assert_store_consistent(data_dir: Path) -> None:
    """No leftovers in tmp/; blobs and rows, and parts and upload rows, match one to one."""
    assert [p.name for p in (data_dir / "tmp").iterdir()] == []
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)) as db:
        rows = {row[0] for row in db.execute("SELECT id FROM submissions")}
        upload_rows = {row[0] for row in db.execute("SELECT id FROM uploads")}
    blobs = {p.name.removesuffix(".age") for p in (data_dir / "blobs").iterdir()}
    assert blobs == rows, f"blobs without rows: {blobs - rows}; rows without blobs: {rows - blobs}"
    parts = {p.name.removesuffix(".part") for p in (data_dir / "uploads").iterdir()}
    assert parts == upload_rows


def decrypted_messages(relay: RelayServer, data_dir: Path) -> list[str]:
    """The message of every stored submission, decrypted with the reviewer's identity."""
    messages = []
    for blob in sorted((data_dir / "blobs").iterdir()):
        plaintext = relay.decrypt_with_stock_age(blob)
        with tarfile.open(fileobj=io.BytesIO(plaintext)) as archive:
            member = archive.extractfile("message.txt")
            assert member is not None
            messages.append(member.read().decode())
    return messages


def assert_acknowledged_decrypt(relay: RelayServer, data_dir: Path, ledger: Ledger) -> None:
    messages = decrypted_messages(relay, data_dir)
    assert len(messages) == len(set(messages))
    assert ledger.acknowledged <= set(messages), ledger.acknowledged - set(messages)
    # A refusal may come after the commit only if nothing was lost: anything
    # stored beyond the acknowledged ones must be one the relay refused.
    assert set(messages) - ledger.acknowledged <= set(ledger.refused)


# --- the test -------------------------------------------------------------------------------


def test_a_full_disk_gives_clear_507s_loses_nothing_and_recovers(tmp_path: Path) -> None:
    with small_file_system(tmp_path / "small", SMALL_FS_MIB) as mount_point:
        data_dir = mount_point / "data"
        settings = {"data_dir": str(data_dir), "disk_reserve_bytes": 0,
                    "max_submission_bytes": 4 * 1024 * 1024}
        with running_relay(tmp_path / "relay", settings) as relay:
            ledger = Ledger()
            pending = fill_and_squeeze(relay, mount_point, data_dir, ledger, tmp_path)
            recover(relay, mount_point, data_dir, ledger, tmp_path, pending)
            assert_store_consistent(data_dir)
            assert_acknowledged_decrypt(relay, data_dir, ledger)
        print(f"\ndisk full: {ledger.uploads_until_507} tus uploads stored on {SMALL_FS_MIB} MiB "
              f"before a 507, then {ledger.no_js_until_507} no-JS submissions on "
              f"{GROWTH_MIB} MiB more; {len(ledger.acknowledged)} acknowledged in all, "
              f"{len(ledger.refused)} refused with 507")


@dataclass
class PendingUpload:
    location: str
    sealed: bytes
    message: str


def fill_and_squeeze(
    relay: RelayServer, mount_point: Path, data_dir: Path, ledger: Ledger, work_dir: Path
) -> PendingUpload:
    """Fill the disk through the relay, then squeeze it; returns the upload left unfinished."""
    # An upload begun while there is room, to be finished after the disk fills.
    sealed = sealed_submission(relay, PENDING_MESSAGE, work_dir)
    status, pending, _ = create_upload(relay, len(sealed))
    assert status == 201
    half = len(sealed) // 2
    assert patch(relay, pending, 0, sealed[:half])[0] == 204

    # Whole tus uploads until one is refused (at creation or while appending).
    for number in range(MAX_UPLOADS):
        message = f"tus tip {number}"
        sealed_tip = sealed_submission(relay, message, work_dir)
        status, location, body = create_upload(relay, len(sealed_tip))
        if status == 201:
            status, headers, body = patch(relay, location, 0, sealed_tip)
        if status == 507:
            assert_tus_507(status, body)
            ledger.refused.append(message)
            break
        assert status == 204 and headers.get("tiprelay-receipt"), (status, body[:300])
        ledger.acknowledged.add(message)
        ledger.uploads_until_507 += 1
    else:
        pytest.fail(f"{MAX_UPLOADS} uploads fit on {SMALL_FS_MIB} MiB: never a 507")
    assert ledger.uploads_until_507 >= 3
    assert_store_consistent(data_dir)

    # More room, then no-JS submissions until the relay says the disk is full.
    remount(mount_point, SMALL_FS_MIB + GROWTH_MIB)
    time.sleep(FREE_SPACE_CACHE_SECONDS)
    for number in range(MAX_FILL_SUBMISSIONS):
        message = f"no-JS tip {number}"
        if post_form(relay, message, os.urandom(ATTACHMENT_BYTES)) == 507:
            ledger.refused.append(message)
            break
        ledger.acknowledged.add(message)
        ledger.no_js_until_507 += 1
        assert_store_consistent(data_dir)
    else:
        pytest.fail(f"{MAX_FILL_SUBMISSIONS} submissions of {ATTACHMENT_BYTES} bytes fit on "
                    f"{SMALL_FS_MIB + GROWTH_MIB} MiB: the relay never said the disk was full")
    assert ledger.no_js_until_507 >= 5
    assert_store_consistent(data_dir)

    # The rest of the pending upload does not fit either: refused, its first half kept.
    time.sleep(FREE_SPACE_CACHE_SECONDS)
    fill_leaving(mount_point / "ballast", mount_point, 0)
    status, _, body = patch(relay, pending, half, sealed[half:])
    assert_tus_507(status, body)
    assert_store_consistent(data_dir)

    # Squeeze: real ENOSPC while writing small submissions, at every margin.
    for margin_kib in SQUEEZE_MARGINS:
        fill_leaving(mount_point / "ballast", mount_point, margin_kib * 1024)
        time.sleep(FREE_SPACE_CACHE_SECONDS)
        message = f"small tip with {margin_kib} KiB free " + "x" * (margin_kib * 300)
        if post_form(relay, message) == 303:
            ledger.acknowledged.add(message)
        else:
            ledger.refused.append(message)
        assert_store_consistent(data_dir)
    assert_acknowledged_decrypt(relay, data_dir, ledger)
    return PendingUpload(pending, sealed, PENDING_MESSAGE)


def recover(
    relay: RelayServer,
    mount_point: Path,
    data_dir: Path,
    ledger: Ledger,
    work_dir: Path,
    pending: PendingUpload,
) -> None:
    """Grow the file system: new submissions succeed and the pending upload completes."""
    remount(mount_point, BIGGER_FS_MIB)
    time.sleep(FREE_SPACE_CACHE_SECONDS)
    message = "after the disk grew"
    assert post_form(relay, message, os.urandom(ATTACHMENT_BYTES)) == 303
    ledger.acknowledged.add(message)

    # The interrupted upload resumes where the relay says it stopped.
    status, headers, _ = request(relay, "HEAD", pending.location, TUS)
    assert status == 200
    offset = int(headers["upload-offset"])
    assert 0 < offset < len(pending.sealed)
    status, headers, body = patch(relay, pending.location, offset, pending.sealed[offset:])
    assert status == 204 and headers.get("tiprelay-receipt"), (status, body[:300])
    ledger.acknowledged.add(pending.message)

    sealed = sealed_submission(relay, "a whole upload after the disk grew", work_dir)
    status, location, _ = create_upload(relay, len(sealed))
    assert status == 201
    status, headers, _ = patch(relay, location, 0, sealed)
    assert status == 204 and headers.get("tiprelay-receipt")
    ledger.acknowledged.add("a whole upload after the disk grew")
    assert_store_consistent(data_dir)


def test_a_submission_that_meets_a_full_disk_gets_507_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    """ENOSPC while sealing (the free-space check is up to 0.5 s old): 507, nothing left."""
    with small_file_system(tmp_path / "small", SMALL_FS_MIB) as mount_point:
        data_dir = mount_point / "data"
        settings = {"data_dir": str(data_dir), "disk_reserve_bytes": 0}
        with running_relay(tmp_path / "relay", settings) as relay:
            outcomes = []
            for attempt in range(ENOSPC_ATTEMPTS):
                ballast = mount_point / f"ballast-{attempt}"
                # The relay reads free space now (plenty), the disk fills at once,
                # and the next submission is sealed before the relay looks again.
                post_form(relay, f"primer {attempt}")
                fill_leaving(ballast, mount_point, 0)
                response = asyncio.run(submit_form(
                    relay.port, Form(message="x" * ENOSPC_MESSAGE_BYTES, lang="en")))
                leftovers = [p.name for p in (data_dir / "tmp").iterdir()]
                outcomes.append((response.status, leftovers))
                ballast.unlink()
                time.sleep(FREE_SPACE_CACHE_SECONDS)
            print(f"\nENOSPC while sealing: (status, files left in tmp/) = {outcomes}")
            assert all(status == 507 for status, _ in outcomes), outcomes
            assert all(left == [] for _, left in outcomes), outcomes
            assert_store_consistent(data_dir)


async def patch_filling_the_disk_midway(
    relay: RelayServer, location: str, body: bytes, fill: Callable[[], None]
) -> tuple[int, bytes]:
    """PATCH ``body`` at offset 0, calling ``fill`` once the first bytes are sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    try:
        head = (f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Upload-Offset: 0\r\nContent-Length: {len(body)}\r\n\r\n")
        writer.write(head.encode() + body[:MIDWAY_BYTES])
        await writer.drain()
        await asyncio.sleep(0.3)  # the relay has checked free space and is reading
        fill()
        writer.write(body[MIDWAY_BYTES:])
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_an_upload_that_meets_a_full_disk_gets_507_and_resumes_after(tmp_path: Path) -> None:
    """ENOSPC while a tus PATCH is appended: 507, the offset stays true, and it resumes."""
    with small_file_system(tmp_path / "small", SMALL_FS_MIB) as mount_point:
        data_dir = mount_point / "data"
        settings = {"data_dir": str(data_dir), "disk_reserve_bytes": 0}
        with running_relay(tmp_path / "relay", settings) as relay:
            sealed = sealed_submission(relay, "an upload that met a full disk", tmp_path)
            status, location, _ = create_upload(relay, len(sealed))
            assert status == 201
            ballast = mount_point / "ballast"
            status, body = asyncio.run(patch_filling_the_disk_midway(
                relay, location, sealed, lambda: fill_leaving(ballast, mount_point, 0)))
            print(f"\nENOSPC during a tus PATCH: HTTP {status} {body[:120]!r}")
            assert_tus_507(status, body)
            assert_store_consistent(data_dir)
            ballast.unlink()
            status, headers, _ = request(relay, "HEAD", location, TUS)
            offset = int(headers["upload-offset"])
            assert status == 200 and 0 <= offset < len(sealed)
            status, headers, _ = patch(relay, location, offset, sealed[offset:])
            assert status == 204 and headers.get("tiprelay-receipt")
            assert_store_consistent(data_dir)
            assert decrypted_messages(relay, data_dir) == ["an upload that met a full disk"]
