"""The relay's own PKESK reader: what real gpg writes is read, everything else refused.

The relay runs this reader on bytes from anonymous browsers instead of handing
them to gpg, so every malformed shape must end in a HeaderError, at a cost
bounded by the 4 KiB cap.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.seeds import openpgp_messages
from relay.crypto.errors import HeaderError
from relay.crypto.openpgp_keys import inspect_public_key
from relay.crypto.openpgp_packets import (
    MAX_MESSAGE_BYTES,
    read_packets,
    read_session_key_recipient,
)
from tests.support_openpgp import GpgReviewer, gpg_reviewer_home, run_gpg


@pytest.fixture(scope="module", params=["cv25519", "rsa3072"])
def reviewer(request: pytest.FixtureRequest) -> Iterator[GpgReviewer]:
    with gpg_reviewer_home("packets", request.param) as made:
        yield made


def gpg_message(reviewer: GpgReviewer, *options: str) -> bytes:
    """What ``gpg --encrypt`` writes for a 16-byte file key, as the relay runs it."""
    return run_gpg(
        reviewer.home, "--trust-model", "always", "--compress-algo", "none", *options,
        "--encrypt", "--recipient", reviewer.fingerprint,
        input_bytes=bytes(range(16)),
    )


def test_what_gpg_writes_is_read_and_names_the_encryption_subkey(reviewer: GpgReviewer) -> None:
    key = inspect_public_key(reviewer.public_key, "test key")
    message = gpg_message(reviewer)
    recipient = read_session_key_recipient(message)
    assert recipient.key_id in key.encryption_key_ids
    assert recipient.key_id != reviewer.fingerprint[-16:]  # the subkey, not the primary
    assert recipient.algorithm in (1, 18)


def test_a_message_that_hides_its_recipient_is_refused(reviewer: GpgReviewer) -> None:
    with pytest.raises(HeaderError, match="wildcard"):
        read_session_key_recipient(gpg_message(reviewer, "--throw-keyids"))


def test_a_message_to_two_keys_or_of_other_packets_is_refused(reviewer: GpgReviewer) -> None:
    message = gpg_message(reviewer)
    pkesk, seipd = read_packets(message)
    assert (pkesk.tag, seipd.tag) == (1, 18)
    pkesk_bytes = message[: pkesk.body_end]
    for shape in (pkesk_bytes + message, message + message, pkesk_bytes, message[pkesk.body_end :]):
        with pytest.raises(HeaderError, match="one encrypted session key packet"):
            read_session_key_recipient(shape)


@pytest.mark.parametrize(
    ("case", "data", "reason"),
    [
        ("empty", b"", "empty"),
        ("no tag bit", b"\x04\x00", "packet tag"),
        ("indeterminate old length", b"\x87" + bytes(20), "indeterminate"),
        ("cut length", b"\x85\x01", "cut off"),
        ("longer than the message", b"\x84\xff" + bytes(10), "longer than"),
        ("reserved tag", b"\xc0\x01\x00", "reserved tag"),
        ("partial PKESK", b"\xc1\xe1" + bytes(2) + b"\x01\x00", "partial length"),
        ("too large", bytes([0xC1]) + bytes(MAX_MESSAGE_BYTES), "larger than"),
    ],
)
def test_malformed_framing_is_refused_with_its_reason(case: str, data: bytes, reason: str) -> None:
    with pytest.raises(HeaderError, match=reason):
        read_session_key_recipient(data)


def _with_pkesk(body: bytes) -> bytes:
    seipd = bytes([1]) + bytes(40)
    return bytes([0x84, len(body)]) + body + bytes([0xD2, len(seipd)]) + seipd


@pytest.mark.parametrize(
    ("case", "pkesk_body", "reason"),
    [
        ("version 6", bytes([6]) + bytes(60), "version 6"),
        ("wildcard", bytes([3]) + bytes(8) + bytes([18]) + bytes(40), "wildcard"),
        ("signing algorithm", bytes([3]) + b"\x01" * 8 + bytes([22]) + bytes(40), "cannot encrypt"),
        ("short", bytes([3, 1, 2]), "too short"),
    ],
)
def test_a_pkesk_we_cannot_check_is_refused(case: str, pkesk_body: bytes, reason: str) -> None:
    with pytest.raises(HeaderError, match=reason):
        read_session_key_recipient(_with_pkesk(pkesk_body))


@pytest.mark.parametrize(
    ("case", "packet"),
    [
        ("AEAD packet (tag 20)", bytes([0xD4, 41, 1]) + bytes(40)),
        ("SEIPD version 2", bytes([0xD2, 41, 2]) + bytes(40)),
        ("empty SEIPD", bytes([0xD2, 0])),
    ],
)
def test_encrypted_data_gpg_22_cannot_read_is_refused(case: str, packet: bytes) -> None:
    body = bytes([3]) + b"\x01" * 8 + bytes([18]) + bytes(40)
    with pytest.raises(HeaderError, match="version 1 SEIPD"):
        read_session_key_recipient(bytes([0x84, len(body)]) + body + packet)


def test_the_packet_after_the_pkesk_must_be_encrypted_data() -> None:
    body = bytes([3]) + b"\x01" * 8 + bytes([18]) + bytes(40)
    literal = bytes([0xCB, 6]) + b"b\x00\x00\x00\x00\x00"
    with pytest.raises(HeaderError, match="not encrypted data"):
        read_session_key_recipient(bytes([0x84, len(body)]) + body + literal)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=3))
def test_any_bytes_or_damaged_seed_end_in_a_key_id_or_a_header_error(
    noise: bytes, which: int
) -> None:
    seed = openpgp_messages()[which]
    for data in (noise, seed[: len(noise) % (len(seed) + 1)], seed[:5] + noise):
        try:
            recipient = read_session_key_recipient(data)
        except HeaderError:
            continue
        assert len(recipient.key_id) == 16
