"""The reviewer API over real HTTP: signed requests work, everything else is one 401."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey
from relay.server.reviewer_auth import UNAUTHORIZED_BODY
from tests.support_reviewer import (
    Answer,
    list_ids,
    random_nonce,
    send,
    signed,
    signed_headers,
    submit_form,
)
from tests.support_server import (
    RelayServer,
    generate_identity,
    running_relay,
    write_reviewer_key_file,
)

LIST = "/api/v1/submissions"
MISSING_ID = "0" * 32


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    """A relay holding three submissions, with one reviewer whose API key is ``api_key``."""
    base = tmp_path_factory.mktemp("reviewer-api") / "relay"
    with running_relay(base, api_key_text=api_key.public_key_text) as server:
        for number in range(3):
            submit_form(server.url, f"tip number {number}", [(f"f{number}.bin", b"x" * 1000)])
        yield server


def _blob_digests(relay: RelayServer) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in relay.blob_paths()}


def _assert_refused(answer: Answer) -> None:
    assert answer.status == 401
    assert answer.body == UNAUTHORIZED_BODY
    assert answer.headers["WWW-Authenticate"].startswith("Signature")


def test_signed_list_is_paginated_and_describes_each_submission(
    relay: RelayServer, api_key: SigningKey
) -> None:
    everything = signed(relay.url, "GET", LIST, api_key)
    assert everything.status == 200
    document = everything.json()
    assert isinstance(document, dict)
    entries = document["submissions"]
    assert len(entries) == 3 and document["next"] is None
    assert set(entries[0]) == {"id", "day", "size", "sha256", "sealed_by"}
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert all(entry["sealed_by"] == "server" for entry in entries)

    first = signed(relay.url, "GET", f"{LIST}?limit=2", api_key).json()
    assert isinstance(first, dict)
    assert [e["id"] for e in first["submissions"]] == [e["id"] for e in entries[:2]]
    assert first["next"] == entries[1]["id"]
    rest = signed(relay.url, "GET", f"{LIST}?limit=2&after={first['next']}", api_key).json()
    assert isinstance(rest, dict)
    assert [e["id"] for e in rest["submissions"]] == [entries[2]["id"]]
    assert rest["next"] is None

    bad = signed(relay.url, "GET", f"{LIST}?limit=0", api_key)
    assert bad.status == 400


def test_download_streams_the_stored_ciphertext_and_honours_range(
    relay: RelayServer, api_key: SigningKey
) -> None:
    document = signed(relay.url, "GET", LIST, api_key).json()
    assert isinstance(document, dict)
    entry = document["submissions"][0]
    path = f"{LIST}/{entry['id']}"
    whole = signed(relay.url, "GET", path, api_key)
    assert whole.status == 200
    assert len(whole.body) == entry["size"]
    assert hashlib.sha256(whole.body).hexdigest() == entry["sha256"]
    assert whole.body.startswith(b"age-encryption.org/v1\n")

    headers = signed_headers(relay.url, "GET", path, api_key)
    part = send(relay.url, "GET", path, {**headers, "Range": "bytes=100-"})
    assert part.status == 206
    assert part.body == whole.body[100:]
    assert part.headers["Content-Range"] == f"bytes 100-{entry['size'] - 1}/{entry['size']}"

    missing = signed(relay.url, "GET", f"{LIST}/{MISSING_ID}", api_key)
    assert missing.status == 404


def _attacks(url: str, key: SigningKey, target_id: str) -> dict[str, Answer]:
    """Every way of getting the signature wrong, each aimed at deleting ``target_id``."""
    path = f"{LIST}/{target_id}"
    other_path = f"{LIST}/{MISSING_ID}"
    stranger = SigningKey.generate()
    answers: dict[str, Answer] = {}
    answers["no signature"] = send(url, "DELETE", path)
    answers["wrong key"] = send(url, "DELETE", path, signed_headers(url, "DELETE", path, stranger))
    answers["tampered path"] = send(
        url, "DELETE", path, signed_headers(url, "DELETE", other_path, key)
    )
    answers["tampered method"] = send(url, "DELETE", path, signed_headers(url, "GET", path, key))
    body_headers = signed_headers(url, "DELETE", path, key, b'{"really": false}')
    answers["tampered body"] = send(url, "DELETE", path, body_headers, b'{"really": true}')
    answers["old created"] = send(
        url, "DELETE", path, signed_headers(url, "DELETE", path, key, created=time.time() - 3600)
    )
    answers["created in the future"] = send(
        url, "DELETE", path, signed_headers(url, "DELETE", path, key, created=time.time() + 3600)
    )
    no_digest = signed_headers(url, "DELETE", path, key)
    del no_digest["Content-Digest"]
    answers["no content digest"] = send(url, "DELETE", path, no_digest)
    garbled = signed_headers(url, "DELETE", path, key)
    garbled["Signature"] = garbled["Signature"][:-12] + "AAAAAAAAAA=:"
    answers["flipped signature"] = send(url, "DELETE", path, garbled)
    answers["malformed headers"] = send(
        url, "DELETE", path, {"Signature-Input": 'x=("@method";', "Signature": "x=:??:"}
    )
    other_authority = signed_headers("http://evil.example", "DELETE", path, key)
    answers["other authority"] = send(url, "DELETE", path, other_authority)
    return answers


def test_every_bad_signature_gets_the_same_401_and_nothing_is_deleted(
    relay: RelayServer, api_key: SigningKey
) -> None:
    before = _blob_digests(relay)
    target = list_ids(relay.url, api_key)[0]
    answers = _attacks(relay.url, api_key, target)
    for reason, answer in answers.items():
        assert answer.status == 401, reason
        _assert_refused(answer)
    assert _blob_digests(relay) == before
    assert target in list_ids(relay.url, api_key)


def test_a_replayed_nonce_is_refused_even_within_the_window(
    relay: RelayServer, api_key: SigningKey
) -> None:
    headers = signed_headers(relay.url, "GET", LIST, api_key, nonce=random_nonce())
    assert send(relay.url, "GET", LIST, headers).status == 200
    _assert_refused(send(relay.url, "GET", LIST, headers))


def test_refusals_look_the_same_for_existing_and_missing_ids(
    relay: RelayServer, api_key: SigningKey
) -> None:
    existing = list_ids(relay.url, api_key)[0]
    for method in ("GET", "DELETE"):
        for submission_id in (existing, MISSING_ID, "not-an-id"):
            answer = send(relay.url, method, f"{LIST}/{submission_id}")
            _assert_refused(answer)
            assert answer.headers.get("Content-Length") == str(len(UNAUTHORIZED_BODY))


def test_refusals_are_logged_by_kind_only(relay: RelayServer, api_key: SigningKey) -> None:
    nonce = random_nonce()
    headers = signed_headers(relay.url, "GET", LIST, SigningKey.generate(), nonce=nonce)
    _assert_refused(send(relay.url, "GET", LIST, headers))
    time.sleep(0.2)
    log = relay.log_text()
    assert '"reviewer_auth_failed"' in log
    assert '"unknown_key"' in log
    assert nonce not in log
    assert headers["Signature"].split("=", 1)[1][:20] not in log


def test_signed_delete_removes_the_submission_and_a_replay_of_it_is_refused(
    relay: RelayServer, api_key: SigningKey
) -> None:
    before = set(list_ids(relay.url, api_key))
    submit_form(relay.url, "to be deleted")
    (target,) = set(list_ids(relay.url, api_key)) - before
    path = f"{LIST}/{target}"
    headers = signed_headers(relay.url, "DELETE", path, api_key)
    assert send(relay.url, "DELETE", path, headers).status == 204
    assert target not in list_ids(relay.url, api_key)
    _assert_refused(send(relay.url, "DELETE", path, headers))
    assert signed(relay.url, "DELETE", path, api_key).status == 404


def test_a_removed_reviewer_key_stops_working_after_sighup(tmp_path: Path) -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    with running_relay(tmp_path / "relay", api_key_text=alice.public_key_text) as relay:
        pass  # prepared and started once; stopped again to add bob before the real start
    bob_recipient = generate_identity(tmp_path / "bob-identity.txt")
    bob_file = write_reviewer_key_file(relay.keys_dir, "bob", bob_recipient, bob.public_key_text)
    relay.start()
    try:
        submit_form(relay.url, "a tip")
        assert signed(relay.url, "GET", LIST, bob).status == 200
        bob_file.unlink()
        relay.reload_keys()
        deadline = time.monotonic() + 10
        while signed(relay.url, "GET", LIST, bob).status == 200:
            assert time.monotonic() < deadline, "bob's key still works after SIGHUP"
            time.sleep(0.05)
        before = _blob_digests(relay)
        target = list_ids(relay.url, alice)[0]
        _assert_refused(signed(relay.url, "DELETE", f"{LIST}/{target}", bob))
        assert _blob_digests(relay) == before
        assert signed(relay.url, "GET", LIST, alice).status == 200
    finally:
        relay.stop()


@pytest.mark.parametrize(
    "limit",
    ["%C2%B2", "%D9%A3", "%EF%BC%93", "1%C2%B2", "", "-1", "+5", "1e3", "1001", "0" * 30, "%201"],
    ids=["superscript-two", "arabic-indic-three", "fullwidth-three", "one-superscript-two",
         "empty", "negative", "plus-sign", "exponent", "too-big", "many-zeros", "leading-space"],
)
def test_a_limit_that_is_not_plain_ascii_digits_gets_400_not_500(
    relay: RelayServer, api_key: SigningKey, limit: str
) -> None:
    answer = signed(relay.url, "GET", f"{LIST}?limit={limit}", api_key)
    assert answer.status == 400, answer
    document = answer.json()
    assert isinstance(document, dict)
    assert "limit must be a whole number" in document["error"]
