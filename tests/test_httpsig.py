"""relay.httpsig (RFC 9421 + RFC 9530 on relay.crypto.signing) and the server's nonce memory."""

from __future__ import annotations

import base64
import time

import pytest
from http_message_signatures import InvalidSignature

from relay import httpsig
from relay.crypto.signing import SigningKey
from relay.server.reviewer_auth import NonceMemory

URL = "http://relay.example:8080/api/v1/submissions?after=ab&limit=5"
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def _keys(key: SigningKey) -> dict[str, bytes]:
    return {httpsig.key_id_for(key.public_bytes): key.public_bytes}


def _verify(method: str, url: str, headers: dict[str, str], body: bytes,
            keys: dict[str, bytes]) -> httpsig.VerifiedSignature:
    return httpsig.verify_request(method, url, list(headers.items()), body, keys.get,
                                  max_age_seconds=300)


def _failure(method: str, url: str, headers: dict[str, str], body: bytes,
             keys: dict[str, bytes]) -> str:
    with pytest.raises(httpsig.SignatureFailure) as caught:
        _verify(method, url, headers, body, keys)
    return caught.value.kind


def test_signature_base_and_headers_follow_rfc9421_and_are_deterministic() -> None:
    key = SigningKey(RFC8032_SEED)
    headers = httpsig.sign_request("get", URL, b"", key, created=1_700_000_000, nonce="n" * 24)
    assert headers["Content-Digest"] == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    expected_params = (
        '("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;'
        'keyid="ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";alg="ed25519";'
        f'nonce="{"n" * 24}";tag="tiprelay-reviewer-api"'
    )
    assert headers["Signature-Input"] == f"tiprelay={expected_params}"
    base = (
        '"@method": GET\n"@authority": relay.example:8080\n"@path": /api/v1/submissions\n'
        '"@query": ?after=ab&limit=5\n'
        '"content-digest": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\n'
        f'"@signature-params": {expected_params}'
    ).encode()
    signature = base64.b64decode(headers["Signature"].removeprefix("tiprelay=:").rstrip(":"))
    assert signature == key.sign(base)  # Ed25519 is deterministic: the exact base was signed


def test_a_good_signature_verifies_and_names_its_key_and_nonce() -> None:
    key = SigningKey.generate()
    body = b'{"x": 1}'
    headers = httpsig.sign_request("DELETE", URL, body, key, nonce="abcdefghijklmnopqrstuvwx")
    verified = _verify("DELETE", URL, headers, body, _keys(key))
    assert verified.public_key == key.public_bytes
    assert verified.key_id == key.public_key_text
    assert verified.nonce == "abcdefghijklmnopqrstuvwx"
    assert abs(verified.created - time.time()) < 5


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda h: {k: v for k, v in h.items() if not k.startswith("Signature")}, "unsigned"),
        (lambda h: {**h, "Signature": "tiprelay=:" + "A" * 86 + "==:"}, "invalid_signature"),
        (lambda h: {**h, "Signature-Input": "tiprelay=("}, "invalid_signature"),
        (lambda h: {k: v for k, v in h.items() if k != "Content-Digest"}, "invalid_signature"),
        (lambda h: {**h, "Content-Digest": "sha-256=:" + "A" * 43 + "=:"}, "invalid_signature"),
    ],
    ids=["no signature", "zero signature", "garbled input", "digest removed", "digest swapped"],
)
def test_altered_signature_headers_fail(change: object, kind: str) -> None:
    key = SigningKey.generate()
    headers = httpsig.sign_request("GET", URL, b"", key)
    assert callable(change)
    assert _failure("GET", URL, change(headers), b"", _keys(key)) == kind


def test_each_covered_part_of_the_request_is_bound() -> None:
    key = SigningKey.generate()
    headers = httpsig.sign_request("GET", URL, b"", key)
    keys = _keys(key)
    assert _failure("DELETE", URL, headers, b"", keys) == "invalid_signature"
    assert _failure("GET", URL.replace(":8080", ":8081"), headers, b"", keys) == "invalid_signature"
    assert _failure("GET", URL.replace("after=ab", "after=ac"), headers, b"", keys) == (
        "invalid_signature"
    )
    assert _failure("GET", URL.replace("/submissions", "/submission"), headers, b"", keys) == (
        "invalid_signature"
    )
    assert _failure("GET", URL, headers, b"x", keys) == "digest_mismatch"


def test_unknown_keys_stale_and_future_signatures_fail_with_their_kind() -> None:
    key = SigningKey.generate()
    headers = httpsig.sign_request("GET", URL, b"", key)
    assert _failure("GET", URL, headers, b"", {}) == "unknown_key"
    old = httpsig.sign_request("GET", URL, b"", key, created=time.time() - 301)
    assert _failure("GET", URL, old, b"", _keys(key)) == "stale"
    future = httpsig.sign_request("GET", URL, b"", key, created=time.time() + 3600)
    assert _failure("GET", URL, future, b"", _keys(key)) == "invalid_signature"


def test_a_signature_covering_too_little_is_refused() -> None:
    key = SigningKey.generate()
    from http_message_signatures import HTTPMessageSigner

    from relay.httpsig import _Message, _OneKeySigner, _RelayEd25519

    headers: dict[str, str] = {}
    signer = HTTPMessageSigner(signature_algorithm=_RelayEd25519, key_resolver=_OneKeySigner(key))
    signer.sign(_Message("GET", URL, headers), key_id=key.public_key_text, nonce="x" * 24,
                tag=httpsig.SIGNATURE_TAG, label="tiprelay", covered_component_ids=("@method",))
    assert _failure("GET", URL, headers, b"", _keys(key)) == "invalid_signature"


def test_the_algorithm_adapter_uses_relay_crypto_and_rejects_bad_signatures() -> None:
    from relay.httpsig import _RelayEd25519

    key = SigningKey.generate()
    signer = _RelayEd25519(private_key=key)
    signature = signer.sign(b"base")
    _RelayEd25519(public_key=key.public_bytes).verify(signature, b"base")
    with pytest.raises(InvalidSignature):
        _RelayEd25519(public_key=key.public_bytes).verify(signature, b"other")


def test_nonce_memory_refuses_replays_forgets_old_nonces_and_stays_bounded() -> None:
    memory = NonceMemory(capacity=3)
    assert memory.remember("k", "n1", forget_after=100.0, now=0.0) is None
    assert memory.remember("k", "n1", forget_after=100.0, now=1.0) == "replayed_nonce"
    assert memory.remember("other", "n1", forget_after=100.0, now=1.0) is None
    assert memory.remember("k", "n2", forget_after=50.0, now=2.0) is None
    # Full: a new nonce is refused rather than accepted unremembered.
    assert memory.remember("k", "n3", forget_after=100.0, now=3.0) == "nonce_memory_full"
    assert len(memory) == 3
    # Once n2's signature is too old to be accepted anyway, its slot is freed.
    assert memory.remember("k", "n3", forget_after=150.0, now=60.0) is None
    assert len(memory) == 3
    assert memory.remember("k", "n1", forget_after=200.0, now=101.0) is None
