"""Signed requests whose body is too large to hold: the headers are verified first,
the signed Content-Digest is checked as the body streams; extra header fields are covered."""

from __future__ import annotations

import os

import pytest

from relay import httpsig
from relay.crypto.signing import SigningKey

URL = "http://127.0.0.1:8080/api/v1/replies/slot"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def verify_headers(
    key: SigningKey, headers: dict[str, str]
) -> tuple[httpsig.VerifiedSignature, httpsig.StreamedBodyDigest]:
    return httpsig.verify_request_headers(
        "PUT", URL, list(headers.items()), lambda _: key.public_bytes, max_age_seconds=300
    )


def test_a_streamed_body_matches_its_signed_digest_only_when_unchanged(key: SigningKey) -> None:
    body = os.urandom(300_000)
    headers = httpsig.sign_request("PUT", URL, body, key)
    _verified, digest = verify_headers(key, headers)
    for start in range(0, len(body), 65536):
        digest.update(body[start : start + 65536])
    assert digest.matches()
    _verified, other = verify_headers(key, headers)
    other.update(body[:-1] + bytes([body[-1] ^ 1]))
    assert not other.matches()
    _verified, short = verify_headers(key, headers)
    short.update(body[:-1])
    assert not short.matches()


def test_signed_fields_are_covered_and_reported(key: SigningKey) -> None:
    fields = {"reply-slot": "ab" * 32, "reply-expects": "empty"}
    headers = httpsig.sign_request("PUT", URL, b"x", key, signed_fields=fields)
    assert {name: headers[name] for name in fields} == fields
    verified, _digest = verify_headers(key, headers)
    assert verified.covered_headers == frozenset(fields)
    plain = httpsig.verify_request(
        "PUT", URL, list(headers.items()), b"x", lambda _: key.public_bytes, max_age_seconds=300
    )
    assert plain.covered_headers == frozenset(fields)
    tampered = {**headers, "reply-slot": "cd" * 32}
    with pytest.raises(httpsig.SignatureFailure) as failure:
        verify_headers(key, tampered)
    assert failure.value.kind == httpsig.INVALID


def test_an_unsigned_or_unknown_key_request_fails_before_any_body_is_read(
    key: SigningKey,
) -> None:
    with pytest.raises(httpsig.SignatureFailure) as failure:
        verify_headers(key, {"Content-Digest": "sha-256=:AAAA:"})
    assert failure.value.kind == httpsig.UNSIGNED
    headers = httpsig.sign_request("PUT", URL, b"x", key)
    with pytest.raises(httpsig.SignatureFailure) as failure:
        httpsig.verify_request_headers(
            "PUT", URL, list(headers.items()), lambda _: None, max_age_seconds=300
        )
    assert failure.value.kind == httpsig.UNKNOWN_KEY
