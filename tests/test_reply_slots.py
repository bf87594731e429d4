"""Reply slots over real HTTP: the reviewer's signed put/list/get/delete, the source's
index/fetch/delete, and what they refuse (issue 9, server side).

A real ``tiprelay serve`` on 127.0.0.1; replies are real age files made with
relay.crypto, to the relay's reviewer plus one extra X25519 recipient (the
source's), as ``tiprelay reply`` makes them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.conversation_salt import ensure_conversation_salt, load_conversation_salt
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey
from relay.server.reviewer_auth import UNAUTHORIZED_BODY
from tests.support_reviewer import (
    Answer,
    send,
    signed,
    signed_with_fields,
)
from tests.support_server import RelayServer, new_relay

RING_SLOTS = 4
MAX_REPLY_BYTES = 65536
SLOT = "/api/v1/replies/slot"
INDEX = "/api/v1/replies/index"
FETCH = "/api/v1/replies/fetch"
DELETE = "/api/v1/replies/delete"


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    base = tmp_path_factory.mktemp("replies") / "relay"
    server = new_relay(
        base,
        {"reply_ring_size": RING_SLOTS, "max_reply_bytes": MAX_REPLY_BYTES},
        api_key_text=api_key.public_key_text,
    )
    ensure_conversation_salt(server.keys_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_tag() -> str:
    return os.urandom(32).hex()


def reply_file(relay: RelayServer, extra_recipients: int = 1, size: int = 300) -> bytes:
    """An age file to the relay's reviewer plus ``extra_recipients`` others."""
    recipients = [X25519Recipient.parse(relay.recipient)]
    recipients += [X25519Identity.generate().recipient for _ in range(extra_recipients)]
    return encrypt_bytes(os.urandom(size), recipients)


def put(
    relay: RelayServer,
    key: SigningKey,
    tag: str,
    body: bytes,
    *,
    expects: str = "empty",
    token: bytes = b"\x01" * 32,
) -> Answer:
    fields = {
        "reply-slot": tag,
        "reply-expects": expects,
        "reply-delete-token-hash": hashlib.sha256(token).hexdigest(),
    }
    return signed_with_fields(relay.url, "PUT", SLOT, key, fields, body)


def source_post(relay: RelayServer, path: str, document: object) -> Answer:
    body = json.dumps(document).encode()
    return send(relay.url, "POST", path, {"Content-Type": "application/json"}, body)


def reply_files(relay: RelayServer) -> list[Path]:
    return sorted((relay.data_dir / "replies").iterdir())


def test_a_reviewer_puts_lists_gets_and_deletes_a_reply(
    relay: RelayServer, api_key: SigningKey
) -> None:
    tag, body = new_tag(), reply_file(relay)
    stored = put(relay, api_key, tag, body)
    assert stored.status == 201, stored.body
    document = stored.json()
    assert document == {
        "tag": tag,
        "day": document["day"],
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    listed = signed(relay.url, "GET", "/api/v1/replies?limit=1000", api_key)
    assert listed.status == 200
    assert document in listed.json()["replies"]  # type: ignore[index]
    fetched = signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag})
    assert (fetched.status, fetched.body) == (200, body)
    assert fetched.headers["Cache-Control"] == "no-store"
    deleted = signed_with_fields(relay.url, "DELETE", SLOT, api_key, {"reply-slot": tag})
    assert deleted.status == 204
    again = signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag})
    assert again.status == 404
    assert signed_with_fields(relay.url, "DELETE", SLOT, api_key, {"reply-slot": tag}).status == 404


def test_a_put_must_name_the_hash_the_slot_holds_or_it_is_refused_with_409(
    relay: RelayServer, api_key: SigningKey
) -> None:
    tag, first, second = new_tag(), reply_file(relay), reply_file(relay)
    assert put(relay, api_key, tag, first).status == 201
    files_before = reply_files(relay)
    for wrong in ("empty", hashlib.sha256(b"something else").hexdigest()):
        conflict = put(relay, api_key, tag, second, expects=wrong)
        assert conflict.status == 409, conflict.body
        assert conflict.json()["problem"] == "slot_changed"  # type: ignore[index]
        assert "pull, then reply again" in conflict.json()["error"]  # type: ignore[index]
    fetched = signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag})
    assert fetched.body == first
    assert reply_files(relay) == files_before
    assert list((relay.data_dir / "tmp").iterdir()) == []
    swapped = put(relay, api_key, tag, second, expects=hashlib.sha256(first).hexdigest())
    assert swapped.status == 201
    fetched = signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag})
    assert fetched.body == second
    assert len(reply_files(relay)) == len(files_before)  # the old file is gone


@pytest.mark.parametrize("extra_recipients", [0, 2])
def test_a_reply_not_to_the_reviewers_plus_exactly_one_is_refused_and_nothing_stored(
    relay: RelayServer, api_key: SigningKey, extra_recipients: int
) -> None:
    tag = new_tag()
    files_before = reply_files(relay)
    refused = put(relay, api_key, tag, reply_file(relay, extra_recipients))
    assert refused.status == 400
    assert "recipient" in refused.json()["error"]  # type: ignore[index]
    assert reply_files(relay) == files_before
    assert list((relay.data_dir / "tmp").iterdir()) == []
    assert signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag}).status == 404
    not_age = put(relay, api_key, tag, b"plain text, not an age file\n" * 10)
    assert not_age.status == 400


def test_an_oversized_reply_is_refused_while_it_streams(
    relay: RelayServer, api_key: SigningKey
) -> None:
    from relay import httpsig

    tag = new_tag()
    body = os.urandom(MAX_REPLY_BYTES * 8)
    fields = {
        "reply-slot": tag,
        "reply-expects": "empty",
        "reply-delete-token-hash": hashlib.sha256(b"t").hexdigest(),
    }
    headers = httpsig.sign_request("PUT", relay.url + SLOT, body, api_key, signed_fields=fields)
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        # Chunked: no Content-Length announces the size, so only streaming can stop it.
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        connection.request("PUT", SLOT, body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
        assert b"max_reply_bytes" in response.read()
    finally:
        connection.close()
    announced = put(relay, api_key, tag, body)  # with Content-Length: refused unread
    assert announced.status == 413
    assert list((relay.data_dir / "tmp").iterdir()) == []
    assert signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag}).status == 404


def test_reply_headers_must_be_signed_and_the_body_must_match_its_digest(
    relay: RelayServer, api_key: SigningKey
) -> None:
    from relay import httpsig

    tag, body = new_tag(), reply_file(relay)
    token_hash = hashlib.sha256(b"t").hexdigest()
    # Reply-Slot sent but not covered by the signature: refused.
    headers = httpsig.sign_request(
        "PUT",
        relay.url + SLOT,
        body,
        api_key,
        signed_fields={"reply-expects": "empty", "reply-delete-token-hash": token_hash},
    )
    unsigned_slot = send(relay.url, "PUT", SLOT, {**headers, "reply-slot": tag}, body)
    assert unsigned_slot.status == 400
    # A covered header changed in transit: the signature fails.
    fields = {"reply-slot": tag, "reply-expects": "empty", "reply-delete-token-hash": token_hash}
    headers = httpsig.sign_request("PUT", relay.url + SLOT, body, api_key, signed_fields=fields)
    tampered = send(relay.url, "PUT", SLOT, {**headers, "reply-slot": new_tag()}, body)
    assert (tampered.status, tampered.body) == (401, UNAUTHORIZED_BODY)
    # The body differs from the signed Content-Digest: refused after streaming, nothing kept.
    headers = httpsig.sign_request("PUT", relay.url + SLOT, body, api_key, signed_fields=fields)
    other_body = reply_file(relay)
    swapped = send(relay.url, "PUT", SLOT, headers, other_body)
    assert (swapped.status, swapped.body) == (401, UNAUTHORIZED_BODY)
    assert signed_with_fields(relay.url, "GET", SLOT, api_key, {"reply-slot": tag}).status == 404
    assert list((relay.data_dir / "tmp").iterdir()) == []
    # Unsigned: the one 401.
    anonymous = send(relay.url, "PUT", SLOT, {"reply-slot": tag}, body)
    assert (anonymous.status, anonymous.body) == (401, UNAUTHORIZED_BODY)


def test_the_ring_index_has_one_length_whatever_it_holds(
    relay: RelayServer, api_key: SigningKey
) -> None:
    ring = [new_tag() for _ in range(RING_SLOTS)]
    empty = source_post(relay, INDEX, {"tags": ring})
    assert empty.status == 200
    assert empty.json()["slots"] == [None] * RING_SLOTS  # type: ignore[index]
    sizes = []
    for number, tag in enumerate(ring):
        body = reply_file(relay, size=100 * (number + 1))
        assert put(relay, api_key, tag, body).status == 201
        sizes.append(len(body))
        answer = source_post(relay, INDEX, {"tags": ring})
        assert answer.status == 200
        assert len(answer.body) == len(empty.body)
        expected = [{"size": size} for size in sizes] + [None] * (RING_SLOTS - len(sizes))
        assert answer.json()["slots"] == expected  # type: ignore[index]
        assert answer.headers["Cache-Control"] == "no-store"
    for wrong in (ring[:-1], [*ring, new_tag()], [*ring[:-1], "xyz"], ring[0]):
        assert source_post(relay, INDEX, {"tags": wrong}).status == 400
    too_big = send(relay.url, "POST", INDEX, {}, b"[" + b" " * 100_000 + b"]")
    assert too_big.status == 413


def test_a_source_fetches_a_reply_and_deletes_it_with_its_token_only(
    relay: RelayServer, api_key: SigningKey
) -> None:
    tag, body, token = new_tag(), reply_file(relay), os.urandom(32)
    assert put(relay, api_key, tag, body, token=token).status == 201
    fetched = source_post(relay, FETCH, {"tag": tag})
    assert (fetched.status, fetched.body) == (200, body)
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Cache-Control"] == "no-store"
    unknown = source_post(relay, FETCH, {"tag": new_tag()})
    assert unknown.status == 404
    wrong_token = source_post(relay, DELETE, {"tag": tag, "token": os.urandom(32).hex()})
    unknown_tag = source_post(relay, DELETE, {"tag": new_tag(), "token": token.hex()})
    assert (wrong_token.status, wrong_token.body) == (unknown_tag.status, unknown_tag.body)
    assert wrong_token.status == 404
    assert source_post(relay, FETCH, {"tag": tag}).body == body  # still there
    deleted = source_post(relay, DELETE, {"tag": tag, "token": token.hex()})
    assert deleted.status == 204
    assert source_post(relay, FETCH, {"tag": tag}).status == 404
    for bad in ({"tag": tag}, {"tag": tag, "token": "00"}, {"tag": "x", "token": token.hex()}):
        assert source_post(relay, DELETE, bad).status == 400
    log = relay.log_text()
    for secret in (tag, token.hex(), hashlib.sha256(token).hexdigest()):
        assert secret not in log
    assert "reviewer" not in [
        key for line in log.splitlines() if "reply" in line for key in json.loads(line)
    ]


def test_the_conversation_salt_is_served_from_keys(relay: RelayServer) -> None:
    answer = send(relay.url, "GET", "/api/v1/conversation-salt")
    assert answer.status == 200
    salt = load_conversation_salt(relay.keys_dir)
    assert salt is not None
    assert answer.json() == {"salt": salt.hex(), "kdf": "v1"}


def test_a_relay_without_a_salt_starts_and_says_conversations_are_off(tmp_path: Path) -> None:
    server = new_relay(tmp_path / "relay")
    server.start()
    try:
        answer = send(server.url, "GET", "/api/v1/conversation-salt")
        assert answer.status == 503
        assert "conversations.disabled_no_salt" in server.log_text()
    finally:
        server.stop()


def test_a_reply_that_would_eat_into_the_disk_reserve_is_refused(
    tmp_path: Path, api_key: SigningKey
) -> None:
    server = new_relay(
        tmp_path / "relay",
        {"disk_reserve_bytes": "1 TiB"},  # more than this disk has free
        api_key_text=api_key.public_key_text,
    )
    server.start()
    try:
        refused = put(server, api_key, new_tag(), reply_file(server))
        assert refused.status == 507
        assert list((server.data_dir / "replies").iterdir()) == []
    finally:
        server.stop()


def test_deeply_nested_json_bodies_get_a_400_and_no_error_line(relay: RelayServer) -> None:
    ring = [new_tag() for _ in range(RING_SLOTS)]
    hostile = [
        b"[" * 1000,
        b"{" * 1000,
        b'{"tag":' * 140,
        b'{"tags": ' + b"[" * 300 + b"]" * 300 + b"}",
        # Brackets hidden in a string must not hide the real ones after it.
        b'{"tag": "[[[\\"]]]", "x": ' + b"[" * 900,
        # UTF-16: json.loads reads it; U+2200's bytes hold a quote byte.
        ('["\u2200", ' + "[" * 400).encode("utf-16-le"),
        b"\xff" * 50,
    ]
    before = relay.log_text()
    # Each cut to its route's body limit (a ring of 4 takes 384 bytes, fetch 1 KiB).
    for path, limit in ((INDEX, RING_SLOTS * 80 + 64), (FETCH, 1024), (DELETE, 1024)):
        for body in (whole[:limit] for whole in hostile):
            answer = send(relay.url, "POST", path, {"Content-Type": "application/json"}, body)
            assert answer.status == 400, (path, body[:40], answer.status)
            assert b"must be JSON" in answer.body
    # Legal bodies just under the bound are parsed, then refused for their shape.
    for legal in ({"tags": [[[tag]] for tag in ring]}, {"tag": [[["x"]]]}):
        answer = source_post(relay, INDEX if "tags" in legal else FETCH, legal)
        assert answer.status == 400 and b"Send {" in answer.body
    assert source_post(relay, INDEX, {"tags": ring}).status == 200
    new_lines = [json.loads(line) for line in relay.log_text()[len(before) :].splitlines()]
    assert not [line for line in new_lines if line.get("level") in ("error", "critical")]
