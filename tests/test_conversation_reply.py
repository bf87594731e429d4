"""Keys, slots and the reply container, in Python: what the shared vectors do not show.

The order of the reader's checks (the MAC before anything is parsed), bounded
cost on hostile containers, stock tar reading a reply, the conversation fields
sealed into a tip, and the KDF primitives against their RFC test vectors.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.config import load_config
from relay.container import tarformat
from relay.conversation.codename import Codename
from relay.conversation.derivation import (
    ConversationFieldsError,
    ConversationKeys,
    ReplyKeys,
    ReplyKeysDeriver,
    codename_fields,
    derive_conversation_keys,
    parse_codename_fields,
)
from relay.conversation.reply import (
    MAC_LABEL,
    ReplyEntriesMismatchError,
    ReplyError,
    ReplyLimits,
    ReplyMalformedError,
    ReplyNotAuthenticError,
    ReplyTooLargeError,
    ReplyWrongConversationError,
    ReplyWrongSlotError,
    build_reply,
    read_reply,
    reply_mac,
)
from relay.conversation.slots import (
    DEFAULT_RING_SIZE,
    delete_token,
    delete_token_hash,
    ring_tags,
    slot_of_reply,
    slot_tag,
)
from relay.crypto import primitives

AUTH = bytes(range(32))
CID = bytes(range(100, 116))


@pytest.fixture(scope="module")
def keys() -> ConversationKeys:
    return derive_conversation_keys(Codename((10, 20, 30, 40, 50, 60, 70)), b"\x07" * 32)


def _read(data: bytes, slot: int = 5, **kwargs: object) -> object:
    return read_reply(data, auth_key=AUTH, conversation_id=CID, slot=slot, **kwargs)  # type: ignore[arg-type]


def _entry(path: str, data: bytes) -> bytes:
    return tarformat.file_header(path, len(data)) + data + tarformat.padding_after(len(data))


def _container(meta: object, mac: bytes | None = None, members: bytes = b"") -> bytes:
    meta_bytes = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    mac = reply_mac(AUTH, meta_bytes) if mac is None else mac
    archive = _entry("reply.mac", mac) + _entry("reply.json", meta_bytes) + members
    return archive + tarformat.END_OF_ARCHIVE


def test_a_reply_round_trips_and_stock_tar_reads_it() -> None:
    files = [("Отчёт 2026.pdf", b"%PDF" * 100), ("../../etc/passwd", b"x"), ("a" * 300, b"")]
    data = build_reply(auth_key=AUTH, conversation_id=CID, n=21, day="2026-12-03",
                       message="Текст ответа", attachments=files)  # fmt: skip
    reply = read_reply(data, auth_key=AUTH, conversation_id=CID, slot=5)
    assert (reply.n, reply.day, reply.message) == (21, "2026-12-03", "Текст ответа")
    assert [a.name for a in reply.attachments] == ["Отчёт 2026.pdf", "passwd", "a" * 200]
    assert [a.data for a in reply.attachments] == [b"%PDF" * 100, b"x", b""]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        meta_bytes = archive.extractfile("reply.json").read()  # type: ignore[union-attr]
        mac = archive.extractfile("reply.mac").read()  # type: ignore[union-attr]
    assert names[:3] == ["reply.mac", "reply.json", "message.txt"]
    assert mac == primitives.hmac_sha256(AUTH, b"tiprelay/reply/v1\0" + meta_bytes)
    meta = json.loads(meta_bytes)
    assert meta["v"] == 1 and meta["conversation_id"] == CID.hex() and meta["n"] == 21
    assert meta["entries"][0] == {"name": "message.txt", "size": len("Текст ответа".encode()),
                                  "sha256": hashlib.sha256("Текст ответа".encode()).hexdigest()}
    assert "Текст" not in repr(reply) and "%PDF" not in repr(reply)


def test_the_mac_is_checked_before_reply_json_is_parsed() -> None:
    garbage = b"{not json at all"
    with pytest.raises(ReplyNotAuthenticError):
        _read(_container(garbage, mac=bytes(32)))
    with pytest.raises(ReplyMalformedError):
        _read(_container(garbage))  # authentic but broken: only now is it parsed
    assert MAC_LABEL == b"tiprelay/reply/v1\x00"


def test_nothing_but_two_plain_headers_is_parsed_before_the_mac() -> None:
    genuine = build_reply(auth_key=AUTH, conversation_id=CID, n=5, day="2026-12-03", message="hi")
    pax = tarformat.pax_record("path", "reply.mac")
    pax_header = tarformat.header_block(b"././@PaxHeader", len(pax), tarformat.PAX_HEADER)
    prefixed = pax_header + pax + tarformat.padding_after(len(pax)) + genuine
    with pytest.raises(ReplyMalformedError):
        _read(prefixed)


def test_each_failing_check_has_its_own_error() -> None:
    genuine = build_reply(auth_key=AUTH, conversation_id=CID, n=5, day="2026-12-03", message="hi")
    with pytest.raises(ReplyWrongSlotError):
        _read(genuine, slot=6)
    assert _read(genuine, slot=5, ring_size=16)
    with pytest.raises(ReplyWrongSlotError):
        _read(genuine, slot=5, ring_size=4)  # 5 mod 4 = 1
    other = build_reply(auth_key=AUTH, conversation_id=bytes(16), n=5, day="2026-12-03",
                        message="hi")  # fmt: skip
    with pytest.raises(ReplyWrongConversationError):
        _read(other)
    with pytest.raises(ReplyNotAuthenticError):
        read_reply(genuine, auth_key=bytes(32), conversation_id=CID, slot=5)
    changed = genuine.replace(b"hi", b"ho", 1)
    with pytest.raises(ReplyEntriesMismatchError):
        _read(changed)
    kinds = {cls.kind for cls in (ReplyTooLargeError, ReplyMalformedError, ReplyNotAuthenticError,
                                  ReplyWrongConversationError, ReplyWrongSlotError,
                                  ReplyEntriesMismatchError)}  # fmt: skip
    assert len(kinds) == 6


def test_an_extra_or_missing_member_is_refused() -> None:
    meta = {"v": 1, "conversation_id": CID.hex(), "n": 5, "day": "2026-12-03", "entries": [
        {"name": "message.txt", "size": 2, "sha256": hashlib.sha256(b"hi").hexdigest()}]}
    assert _read(_container(meta, members=_entry("message.txt", b"hi")))
    with pytest.raises(ReplyEntriesMismatchError):
        _read(_container(meta, members=_entry("message.txt", b"hi") + _entry("files/x", b"1")))
    with pytest.raises(ReplyEntriesMismatchError):
        _read(_container(meta))
    link = bytearray(tarformat.header_block(b"message.txt", 0, b"2"))
    with pytest.raises(ReplyEntriesMismatchError):
        _read(_container(meta, members=bytes(link)))


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"n": 0},
        {"n": "5"},
        {"n": 5.0},
        {"day": "2026-13-01"},
        {"entries": []},
        {"entries": [{"name": "files/x", "size": 0, "sha256": "0" * 64}]},
        {"entries": [{"name": "message.txt", "size": -1, "sha256": "0" * 64}]},
        {"entries": [{"name": "message.txt", "size": 0, "sha256": "0" * 64},
                     {"name": "files/../x", "size": 0, "sha256": "0" * 64}]},
        {"extra": 1},
    ],
)
def test_authentic_but_invalid_reply_json_is_malformed(change: dict[str, object]) -> None:
    meta: dict[str, object] = {"v": 1, "conversation_id": CID.hex(), "n": 5, "day": "2026-12-03",
                               "entries": [{"name": "message.txt", "size": 0, "sha256": "0" * 64}]}
    meta.update(change)
    with pytest.raises(ReplyMalformedError):
        _read(_container(meta))


def test_hostile_sizes_are_refused_before_any_work() -> None:
    limits = ReplyLimits(max_reply_bytes=4096)
    big = build_reply(auth_key=AUTH, conversation_id=CID, n=5, day="2026-12-03",
                      message="x" * 5000)  # fmt: skip
    with pytest.raises(ReplyTooLargeError):
        _read(big, limits=limits)
    many = build_reply(auth_key=AUTH, conversation_id=CID, n=5, day="2026-12-03", message="",
                       attachments=[("a", b""), ("b", b"")])  # fmt: skip
    with pytest.raises(ReplyMalformedError):
        _read(many, limits=ReplyLimits(max_entries=2))
    with pytest.raises(ReplyMalformedError):
        _read(many, limits=ReplyLimits(max_meta_bytes=100))
    huge_mac = _entry("reply.mac", bytes(64)) + tarformat.END_OF_ARCHIVE
    with pytest.raises(ReplyMalformedError):
        _read(huge_mac)
    lying_size = tarformat.header_block(b"reply.mac", 2**40, b"0") + bytes(1024)
    with pytest.raises(ReplyMalformedError):
        _read(lying_size)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_to_a_reply_gives_a_reply_error_never_a_crash(data: st.DataObject) -> None:
    genuine = build_reply(auth_key=AUTH, conversation_id=CID, n=5, day="2026-12-03",
                          message="hello", attachments=[("f.bin", bytes(700))])  # fmt: skip
    damaged = bytearray(genuine)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    try:
        reply = _read(bytes(damaged[:cut]))
    except ReplyError:
        return
    assert reply == _read(genuine)  # only damage to padding or ignored header bytes passes


def test_slot_tags_and_delete_tokens(keys: ConversationKeys) -> None:
    tags = ring_tags(keys.slot_key, 16)
    assert len(set(tags)) == 16 and all(len(t) == 32 for t in tags)
    assert tags[slot_of_reply(17)] == slot_tag(keys.slot_key, 1)
    assert slot_tag(keys.slot_key, 1) == primitives.hmac_sha256(keys.slot_key, b"slot\0\0\0\1")
    token = delete_token(keys.delete_key, 1)
    assert token == primitives.hmac_sha256(keys.delete_key, b"delete\0\0\0\1")
    assert delete_token_hash(token) == hashlib.sha256(token).digest()
    assert token not in tags
    with pytest.raises(ValueError):
        slot_of_reply(0)
    with pytest.raises(ValueError):
        ring_tags(keys.slot_key, 0)


def test_the_team_gets_every_key_but_the_reply_identity(keys: ConversationKeys) -> None:
    fields = keys.reply_keys().to_fields()
    assert fields["kdf"] == "v1" and fields["reply_recipient"].startswith("age1")
    assert keys.reply_identity_secret.hex() not in json.dumps(fields)
    team = ReplyKeys.from_fields(json.loads(json.dumps(fields)))
    assert team.to_fields() == fields
    assert "<secret>" in repr(team) and keys.auth_key.hex() not in repr(keys)
    for broken in ({**fields, "kdf": "v2"}, {**fields, "slot_key": "00"}, {**fields, "x": "1"},
                   {**fields, "reply_recipient": "age1nope"}, [], None):  # fmt: skip
        with pytest.raises(ConversationFieldsError):
            ReplyKeys.from_fields(broken)


def test_a_sealed_codename_gives_the_team_the_same_reply_keys_once(
    keys: ConversationKeys,
) -> None:
    codename, salt = Codename((10, 20, 30, 40, 50, 60, 70)), b"\x07" * 32
    fields = codename_fields(codename, salt)
    assert fields == {"kdf": "v1", "codename_indices": [10, 20, 30, 40, 50, 60, 70],
                      "relay_salt": "07" * 32}  # fmt: skip
    assert parse_codename_fields(json.loads(json.dumps(fields))) == (codename, salt)
    deriver = ReplyKeysDeriver()
    assert deriver.reply_keys(fields).to_fields() == keys.reply_keys().to_fields()
    assert deriver.reply_keys(dict(fields)).to_fields() == keys.reply_keys().to_fields()
    assert deriver.derivations == 1
    # The browser's derived form still reads, without a derivation.
    assert deriver.reply_keys(keys.reply_keys().to_fields()).to_fields() == (
        keys.reply_keys().to_fields()
    )
    assert deriver.derivations == 1
    for broken in (
        {**fields, "kdf": "v2"},
        {**fields, "codename_indices": [10, 20, 30, 40, 50, 60]},
        {**fields, "codename_indices": [10, 20, 30, 40, 50, 60, 7776]},
        {**fields, "codename_indices": [10, 20, 30, 40, 50, 60, -1]},
        {**fields, "codename_indices": [10, 20, 30, 40, 50, 60, True]},
        {**fields, "codename_indices": [10, 20, 30, 40, 50, 60, 70.0]},
        {**fields, "codename_indices": "10 20 30 40 50 60 70"},
        {**fields, "relay_salt": "07" * 31},
        {**fields, "relay_salt": "0G" * 32},
        {**fields, "relay_salt": "AB" * 32},
        {**fields, "x": "1"},
        {**fields, "slot_key": "00" * 32},
    ):
        with pytest.raises(ConversationFieldsError):
            deriver.reply_keys(broken)
    assert deriver.derivations == 1
    assert "07" * 32 not in repr(deriver)


def test_kdf_primitives_match_their_rfc_test_vectors() -> None:
    # RFC 5869 A.1 (HKDF-SHA-256, basic test case)
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    prk = primitives.hkdf_extract(salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    assert primitives.hkdf_expand(prk, info, 42).hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    # RFC 7914 section 11 (PBKDF2-HMAC-SHA-256)
    assert primitives.pbkdf2_sha256(b"passwd", b"salt", 1, 64).hex() == (
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    )
    with pytest.raises(ValueError):
        primitives.pbkdf2_sha256(b"x", b"y", 0)
    with pytest.raises(ValueError):
        primitives.hkdf_expand(b"short", b"", 32)


def test_relay_settings_default_to_the_protocol_defaults() -> None:
    config = load_config({}, None)
    limits = ReplyLimits()
    assert config.reply_ring_size == DEFAULT_RING_SIZE
    assert (config.max_reply_bytes, config.max_reply_entries) == (
        limits.max_reply_bytes,
        limits.max_entries,
    )
    assert load_config({"TIPRELAY_MAX_REPLY_BYTES": "1 MiB"}, None).max_reply_bytes == 1 << 20
