"""The tus 1.0.0 endpoint, against a real ``tiprelay serve`` on 127.0.0.1.

tuspy (the tus project's own Python client) uploads age files made with the
stock ``age``: a valid one for this relay's reviewers becomes a submission; any
other (not age, armored, wrong or unknown stanzas, wrong recipient count,
truncated) is refused with 422 and leaves nothing behind. Raw HTTP checks the
protocol itself: OPTIONS, creation limits, HEAD, offsets (409), termination,
busy uploads (423), the receipt header, and uploads that survive a restart.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import ScryptRecipient
from relay.store import SubmissionStore
from tests.support_server import (
    RelayServer,
    generate_identity,
    new_relay,
    running_relay,
    write_reviewer_key_file,
)

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {"Content-Type": "application/offset+octet-stream"}
MAX_BYTES = 8 * 1024 * 1024


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    with running_relay(tmp_path / "relay", {"max_submission_bytes": MAX_BYTES}) as server:
        yield server


def age_encrypt(plaintext: Path, recipients: list[str], out: Path, *, armor: bool = False) -> Path:
    """The stock ``age`` binary encrypts ``plaintext`` to ``recipients``."""
    args = ["age", "-o", str(out)]
    for recipient in recipients:
        args += ["-r", recipient]
    if armor:
        args.append("-a")
    subprocess.run([*args, str(plaintext)], check=True)
    return out


def plaintext_file(folder: Path, size: int = 200_000) -> Path:
    path = folder / "plain.bin"
    path.write_bytes(os.urandom(size))
    return path


def request(
    relay: RelayServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def create(relay: RelayServer, length: int, **extra: str) -> str:
    status, headers, _ = request(
        relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": str(length), **extra}
    )
    assert status == 201
    location = urlsplit(headers["location"]).path
    assert location.startswith("/api/v1/uploads/")
    return location


def patch(
    relay: RelayServer, location: str, offset: int, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    return request(
        relay, "PATCH", location, {**TUS, **OFFSET_STREAM, "Upload-Offset": str(offset)}, body
    )


def tuspy_upload(relay: RelayServer, path: Path, chunk_size: int = 64 * 1024) -> dict[str, str]:
    """Upload ``path`` with tuspy; the last response's headers (lower-case names)."""
    # A stream we close ourselves: tuspy leaves files it opened to the garbage collector.
    with path.open("rb") as stream:
        uploader = tus_client.TusClient(relay.url + "/api/v1/uploads").uploader(
            file_stream=stream, chunk_size=chunk_size
        )
        uploader.upload()
    assert uploader.request is not None
    return {k.lower(): v for k, v in uploader.request.response_headers.items()}


def assert_nothing_left(relay: RelayServer) -> None:
    assert relay.blob_paths() == []
    uploads = relay.data_dir / "uploads"
    leftovers = [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    assert leftovers == []


# --- tuspy: valid and invalid age files ---------------------------------------


def test_tuspy_uploads_a_stock_age_file_and_it_becomes_a_submission(
    relay: RelayServer, tmp_path: Path
) -> None:
    plain = plaintext_file(tmp_path, 1_000_000)
    sealed = age_encrypt(plain, [relay.recipient], tmp_path / "sealed.age")
    headers = tuspy_upload(relay, sealed, chunk_size=256 * 1024)
    receipt = headers["tiprelay-receipt"]
    (blob,) = relay.blob_paths()
    assert blob.read_bytes() == sealed.read_bytes()
    assert receipt in blob.name
    assert relay.decrypt_with_stock_age(blob) == plain.read_bytes()
    assert list((relay.data_dir / "uploads").glob("*")) == []


def test_two_reviewers_each_get_a_stanza_and_each_decrypts_alone(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay", {"max_submission_bytes": MAX_BYTES})
    second_identity = tmp_path / "second-identity.txt"
    second = generate_identity(second_identity)
    write_reviewer_key_file(relay.keys_dir, "second", second)
    plain = plaintext_file(tmp_path)
    try:
        relay.start()
        status, _, body = request(relay, "GET", "/api/v1/recipients")
        assert status == 200
        assert sorted(json.loads(body)["recipients"]) == sorted([relay.recipient, second])
        only_first = age_encrypt(plain, [relay.recipient], tmp_path / "one.age")
        with pytest.raises(TusCommunicationError) as refused:
            tuspy_upload(relay, only_first)
        assert refused.value.status_code == 422
        assert b"2 reviewer(s)" in refused.value.response_content
        assert_nothing_left(relay)
        both = age_encrypt(plain, [relay.recipient, second], tmp_path / "both.age")
        tuspy_upload(relay, both)
        (blob,) = relay.blob_paths()
        for identity in (relay.identity_path, second_identity):
            opened = subprocess.run(
                ["age", "-d", "-i", str(identity), str(blob)], check=True, capture_output=True
            ).stdout
            assert opened == plain.read_bytes()
    finally:
        relay.stop()


def insert_stanza(sealed: bytes, stanza: bytes) -> bytes:
    mac_at = sealed.index(b"\n---") + 1
    return sealed[:mac_at] + stanza + sealed[mac_at:]


def invalid_uploads(relay: RelayServer, tmp_path: Path) -> dict[str, bytes]:
    plain = plaintext_file(tmp_path, 100)
    valid = age_encrypt(plain, [relay.recipient], tmp_path / "valid.age").read_bytes()
    stranger = generate_identity(tmp_path / "stranger.txt")
    to_two = age_encrypt(plain, [relay.recipient, stranger], tmp_path / "two.age").read_bytes()
    first_stanza_end = valid.index(b"\n---")
    first_stanza = valid[valid.index(b"-> ") : first_stanza_end + 1]
    return {
        "not age": os.urandom(5000),
        "armored": age_encrypt(plain, [relay.recipient], tmp_path / "a.age", armor=True)
        .read_bytes(),
        "passphrase stanza": encrypt_bytes(b"x" * 100, [ScryptRecipient(b"pw", work_factor=10)]),
        "unknown stanza added": insert_stanza(valid, b"-> unknown-type arg\nAAAA\n"),
        "a stranger added": to_two,
        "the same stanza twice": insert_stanza(valid, first_stanza),
        "truncated payload": valid[: len(valid) - 110],
        "truncated header": valid[:40],
        "nonce only": valid[: valid.index(b"\n", first_stanza_end + 1) + 1 + 16],
    }


def test_uploads_that_are_not_valid_age_for_our_reviewers_are_refused_and_nothing_is_left(
    relay: RelayServer, tmp_path: Path
) -> None:
    for case, data in invalid_uploads(relay, tmp_path).items():
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        with pytest.raises(TusCommunicationError) as refused:
            tuspy_upload(relay, path)
        assert refused.value.status_code == 422, case
        message = json.loads(refused.value.response_content)["error"]
        assert message.startswith("The upload"), (case, message)
        assert_nothing_left(relay)
    status, _, _ = request(relay, "GET", "/healthz")
    assert status == 200


# --- the protocol -------------------------------------------------------------


def test_options_announces_version_extensions_and_the_size_cap(relay: RelayServer) -> None:
    status, headers, _ = request(relay, "OPTIONS", "/api/v1/uploads")
    assert status == 204
    assert headers["tus-version"] == "1.0.0"
    assert set(headers["tus-extension"].split(",")) == {"creation", "termination", "expiration"}
    assert headers["tus-max-size"] == str(MAX_BYTES)


def test_creation_needs_the_tus_version_and_a_length_within_the_cap(relay: RelayServer) -> None:
    status, headers, _ = request(relay, "POST", "/api/v1/uploads", {"Upload-Length": "10"})
    assert status == 412
    assert headers["tus-version"] == "1.0.0"
    assert request(relay, "POST", "/api/v1/uploads", TUS)[0] == 400
    assert request(relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": "-5"})[0] == 400
    assert request(relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Defer-Length": "1"})[0] == 400
    status, _, body = request(
        relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": str(MAX_BYTES + 1)}
    )
    assert status == 413
    assert "larger than this relay accepts" in json.loads(body)["error"]
    assert_nothing_left(relay)


def test_uploads_receiving_bytes_are_capped_in_number_and_freed_by_termination(
    tmp_path: Path,
) -> None:
    with running_relay(tmp_path / "relay", {"max_open_uploads": 2}) as relay:
        first = create(relay, 1 << 20)
        second = create(relay, 1 << 20)
        assert patch(relay, first, 0, b"x" * 65536)[0] == 204
        assert patch(relay, second, 0, b"x" * 65536)[0] == 204
        # Both are receiving bytes at a good rate: neither gives way to a new upload.
        status, _, body = request(
            relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": "1000"}
        )
        assert status == 503
        assert "Too many uploads are in progress" in json.loads(body)["error"]
        assert request(relay, "DELETE", first, TUS)[0] == 204
        create(relay, 1000)


def test_uploads_receiving_bytes_cannot_claim_more_disk_than_is_free(tmp_path: Path) -> None:
    # Leave 300 MiB above the reserve: one 200 MiB upload that is receiving
    # bytes claims what it still needs; a second would not fit next to it.
    free = shutil.disk_usage(tmp_path).free
    settings = {"disk_reserve_bytes": free - 300 * 1024 * 1024, "max_submission_bytes": 1 << 30}
    with running_relay(tmp_path / "relay", settings) as relay:
        first = create(relay, 200 * 1024 * 1024)
        assert patch(relay, first, 0, b"x" * 65536)[0] == 204
        status, _, body = request(
            relay, "POST", "/api/v1/uploads", {**TUS, "Upload-Length": str(200 * 1024 * 1024)}
        )
        assert status == 507
        assert "running out of storage space" in json.loads(body)["error"]


def test_head_reports_offset_and_length_and_is_never_cached(relay: RelayServer) -> None:
    location = create(relay, 1000)
    assert patch(relay, location, 0, b"a" * 300)[0] == 204
    status, headers, _ = request(relay, "HEAD", location, TUS)
    assert status == 200
    assert headers["upload-offset"] == "300"
    assert headers["upload-length"] == "1000"
    assert headers["cache-control"] == "no-store"
    assert "upload-expires" in headers
    assert request(relay, "HEAD", "/api/v1/uploads/" + "0" * 32, TUS)[0] == 404
    assert request(relay, "HEAD", "/api/v1/uploads/not-an-id", TUS)[0] == 404


def test_patch_at_the_wrong_offset_is_refused_with_409_and_changes_nothing(
    relay: RelayServer,
) -> None:
    location = create(relay, 1000)
    assert patch(relay, location, 0, b"a" * 100)[0] == 204
    status, headers, _ = patch(relay, location, 50, b"b" * 100)
    assert status == 409
    assert headers["upload-offset"] == "100"
    status, _, _ = patch(relay, location, 200, b"b" * 100)
    assert status == 409
    assert request(relay, "HEAD", location, TUS)[1]["upload-offset"] == "100"


def test_patch_needs_the_offset_content_type_and_stays_within_the_length(
    relay: RelayServer,
) -> None:
    location = create(relay, 100)
    status, _, _ = request(
        relay,
        "PATCH",
        location,
        {**TUS, "Content-Type": "application/octet-stream", "Upload-Offset": "0"},
        b"x",
    )
    assert status == 415
    assert patch(relay, location, 0, b"x" * 101)[0] == 413
    assert request(relay, "HEAD", location, TUS)[1]["upload-offset"] == "0"


def test_delete_terminates_an_upload_and_removes_its_bytes(relay: RelayServer) -> None:
    location = create(relay, 1000)
    assert patch(relay, location, 0, b"z" * 500)[0] == 204
    assert request(relay, "DELETE", location, TUS)[0] == 204
    assert request(relay, "HEAD", location, TUS)[0] == 404
    assert request(relay, "DELETE", location, TUS)[0] == 404
    assert_nothing_left(relay)


def test_upload_metadata_is_never_stored_or_logged(relay: RelayServer, tmp_path: Path) -> None:
    marker = "metadata-marker-7f3a.pdf"
    encoded = base64.b64encode(marker.encode()).decode()
    location = create(relay, 50, **{"Upload-Metadata": f"filename {encoded}"})
    assert patch(relay, location, 0, b"q" * 10)[0] == 204
    relay.stop()
    for path in [*relay.data_dir.rglob("*"), relay.log_path]:
        if path.is_file():
            content = path.read_bytes()
            assert marker.encode() not in content, path
            assert encoded.encode() not in content, path


def test_a_busy_upload_answers_423_until_its_patch_finishes(relay: RelayServer) -> None:
    location = create(relay, 1000)
    slow = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    try:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            "Content-Length: 400\r\n\r\n"
        )
        slow.sendall(head.encode() + b"s" * 100)
        time.sleep(0.5)
        assert patch(relay, location, 0, b"t" * 10)[0] == 423
        slow.sendall(b"s" * 300)
        reply = slow.recv(4096)
        assert reply.startswith(b"HTTP/1.1 204")
    finally:
        slow.close()
    assert request(relay, "HEAD", location, TUS)[1]["upload-offset"] == "400"


def test_a_dropped_connection_keeps_what_arrived_and_the_upload_resumes_there(
    relay: RelayServer, tmp_path: Path
) -> None:
    sealed = age_encrypt(plaintext_file(tmp_path, 300_000), [relay.recipient], tmp_path / "s.age")
    data = sealed.read_bytes()
    location = create(relay, len(data))
    dropped = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    dropped.sendall(head.encode() + data[:100_000])
    time.sleep(0.5)
    dropped.close()  # the circuit breaks halfway
    offset = -1
    for _ in range(100):
        status, headers, _ = request(relay, "HEAD", location, TUS)
        offset = int(headers["upload-offset"])
        if status == 200 and offset > 0:
            break
        time.sleep(0.05)
    assert offset == 100_000  # kept every byte that arrived, nothing more
    status, headers, _ = patch(relay, location, offset, data[offset:])
    assert status == 204
    assert headers["tiprelay-receipt"]
    (blob,) = relay.blob_paths()
    assert blob.read_bytes() == data


def test_partial_upload_survives_a_restart_and_completes_with_a_receipt(
    relay: RelayServer, tmp_path: Path
) -> None:
    plain = plaintext_file(tmp_path, 500_000)
    data = age_encrypt(plain, [relay.recipient], tmp_path / "s.age").read_bytes()
    location = create(relay, len(data))
    assert patch(relay, location, 0, data[:200_000])[0] == 204
    relay.stop()
    relay.start()
    status, headers, _ = request(relay, "HEAD", location, TUS)
    assert status == 200
    assert headers["upload-offset"] == "200000"
    status, headers, _ = patch(relay, location, 200_000, data[200_000:])
    assert status == 204
    receipt = headers["tiprelay-receipt"]
    assert headers["upload-offset"] == str(len(data))
    # A client whose last response was lost learns from HEAD that it is done.
    status, headers, _ = request(relay, "HEAD", location, TUS)
    assert status == 200
    assert headers["upload-offset"] == headers["upload-length"] == str(len(data))
    assert headers["tiprelay-receipt"] == receipt
    (blob,) = relay.blob_paths()
    assert relay.decrypt_with_stock_age(blob) == plain.read_bytes()


def test_recipients_api_returns_the_recipients_and_their_fingerprint(relay: RelayServer) -> None:
    from relay.fingerprint import recipient_set_fingerprint

    status, headers, body = request(relay, "GET", "/api/v1/recipients")
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {
        "recipients": [relay.recipient],
        "fingerprint": recipient_set_fingerprint([relay.recipient]),
        "openpgp_keys": {},
    }


def test_an_upload_complete_but_not_committed_at_a_crash_is_committed_when_resumed(
    relay: RelayServer, tmp_path: Path
) -> None:
    # The server died after the last byte was on disk but before the commit; the
    # client's HEAD must then get a receipt, never a bare "complete".
    plain = plaintext_file(tmp_path, 70_000)
    data = age_encrypt(plain, [relay.recipient], tmp_path / "s.age").read_bytes()
    location = create(relay, len(data))
    assert patch(relay, location, 0, data[:1000])[0] == 204
    relay.kill()
    store = SubmissionStore(relay.data_dir)
    store.open()
    try:
        store.append_upload(location.rsplit("/", 1)[1], 1000, data[1000:])
    finally:
        store.close()
    relay.start()
    assert relay.blob_paths() == []
    status, headers, _ = request(relay, "HEAD", location, TUS)
    assert status == 200
    assert headers["upload-offset"] == headers["upload-length"] == str(len(data))
    receipt = headers["tiprelay-receipt"]
    (blob,) = relay.blob_paths()
    assert receipt in blob.name
    assert relay.decrypt_with_stock_age(blob) == plain.read_bytes()


def test_a_body_longer_than_announced_deletes_the_upload(relay: RelayServer) -> None:
    location = create(relay, 100)
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        # Chunked, so that the length is only found out while reading.
        connection.request(
            "PATCH",
            location,
            body=iter([b"x" * 60, b"y" * 60]),
            headers={**TUS, **OFFSET_STREAM, "Upload-Offset": "0"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        response.read()
    finally:
        connection.close()
    assert request(relay, "HEAD", location, TUS)[0] == 404
    assert_nothing_left(relay)
