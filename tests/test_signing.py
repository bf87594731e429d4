"""relay.crypto.signing: Ed25519 keys for the reviewer API."""

from __future__ import annotations

import pytest

from relay.crypto import signing
from relay.crypto.errors import KeyFormatError

# RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC8032_SEED_2 = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_SIGNATURE_72 = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_rfc8032_vectors_sign_and_verify() -> None:
    key = signing.SigningKey(RFC8032_SEED)
    assert key.public_bytes == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE_EMPTY
    assert signing.verify(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE_EMPTY)
    key2 = signing.SigningKey(RFC8032_SEED_2)
    assert key2.sign(b"\x72") == RFC8032_SIGNATURE_72
    assert signing.verify(key2.public_bytes, b"\x72", RFC8032_SIGNATURE_72)


def test_key_file_round_trip_keeps_the_key_and_is_clearly_secret() -> None:
    key = signing.SigningKey.generate()
    text = key.to_key_file_text()
    assert signing.KEY_FILE_MARKER in text
    assert key.public_key_text in text
    again = signing.SigningKey.from_key_file_text(text)
    assert again.public_bytes == key.public_bytes
    assert again.sign(b"same") == key.sign(b"same")
    assert RFC8032_SEED.hex() not in repr(signing.SigningKey(RFC8032_SEED)).lower()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        signing.KEY_FILE_MARKER + "00" * 31,
        signing.KEY_FILE_MARKER + "zz" * 32,
        signing.KEY_FILE_MARKER + "00" * 32 + "\n" + signing.KEY_FILE_MARKER + "11" * 32,
        "x" * 100_000,
    ],
    ids=["empty", "age-identity", "short", "not-hex", "two-keys", "huge"],
)
def test_malformed_key_files_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(KeyFormatError):
        signing.SigningKey.from_key_file_text(text)


def test_a_damaged_seed_is_caught_by_the_public_key_comment() -> None:
    text = signing.SigningKey(RFC8032_SEED).to_key_file_text()
    damaged = text.replace("9D61B1", "9D61B2")
    with pytest.raises(KeyFormatError, match="does not match"):
        signing.SigningKey.from_key_file_text(damaged)


def test_verify_returns_false_and_never_raises_for_bad_input() -> None:
    key = signing.SigningKey(RFC8032_SEED)
    good = key.sign(b"message")
    assert signing.verify(key.public_bytes, b"message", good)
    flipped = bytes([good[0] ^ 1]) + good[1:]
    assert not signing.verify(key.public_bytes, b"message", flipped)
    assert not signing.verify(key.public_bytes, b"messagE", good)
    assert not signing.verify(key.public_bytes[:31], b"message", good)
    assert not signing.verify(key.public_bytes, b"message", good[:63])
    assert not signing.verify(bytes(32), b"message", good)
    assert not signing.verify(b"\xff" * 32, b"message", good)  # not a curve point
    assert not signing.verify("key", b"message", good)  # type: ignore[arg-type]
    assert not signing.verify(key.public_bytes, "message", good)  # type: ignore[arg-type]


def test_public_key_text_round_trips_and_bad_text_is_refused() -> None:
    text = signing.format_public_key(RFC8032_PUBLIC)
    assert text == "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    assert signing.parse_public_key(text) == RFC8032_PUBLIC
    for bad in ["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "ed25519:!!", "ed25519:AAAA"]:
        with pytest.raises(KeyFormatError):
            signing.parse_public_key(bad)
