"""A small, bounded reader of the OpenPGP messages inside ``tiprelay-openpgp`` stanzas.

The relay must check that a browser-sealed upload's OpenPGP stanza is addressed
to the reviewer it names, without handing bytes from an anonymous client to
gpg. This module reads only packet framing (RFC 9580, section 4.2) and the
first fields of the Public-Key Encrypted Session Key packet (section 5.1); it
decrypts nothing and allocates nothing beyond the stanza body it is given.

The shape accepted is what ``gpg --encrypt`` (2.2) and tiprelay's OpenPGP.js
wrapper write for one recipient: exactly one version-3 PKESK packet naming a
key id, then exactly one version-1 SEIPD packet (tag 18) that runs to the end
of the body. Other encrypted-data packets (SEIPD v2, the pre-standard AEAD
packet) are refused: a reviewer's gpg 2.2 could not open them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import HeaderError

# A stanza body holds one PKESK (an RSA-8192 one is about 1 KiB) and 16 bytes of
# encrypted file key with its framing; anything much larger is not ours.
MAX_MESSAGE_BYTES = 4096
TAG_PKESK = 1
TAG_SEIPD = 18
TAG_AEAD_ENCRYPTED = 20
TAG_USER_ATTRIBUTE = 17  # in a key: a photo ID
_ENCRYPTED_DATA_TAGS = frozenset({TAG_SEIPD, TAG_AEAD_ENCRYPTED})
_PKESK_VERSION = 3
_KEY_ID_BYTES = 8
# Public-key algorithms that can encrypt a session key (RFC 9580, 9.1).
_ENCRYPTION_ALGORITHMS = frozenset({1, 2, 16, 18, 25, 26})
_WILDCARD_KEY_ID = bytes(_KEY_ID_BYTES)


@dataclass(frozen=True)
class Packet:
    """One packet's tag and the span of its body within the message."""

    tag: int
    body_start: int
    body_end: int


@dataclass(frozen=True)
class EncryptedSessionKey:
    """What the PKESK packet of a one-recipient message says about its recipient."""

    key_id: str  # 16 upper-case hex digits
    algorithm: int


def _fail(reason: str) -> HeaderError:
    return HeaderError(f"The OpenPGP message in the stanza is malformed: {reason}.")


def _new_format_length(data: bytes, at: int) -> tuple[int, int, bool]:
    """(length, offset after the length octets, is partial) of a new-format length."""
    if at >= len(data):
        raise _fail("a packet length is cut off")
    first = data[at]
    if first < 192:
        return first, at + 1, False
    if first < 224:
        if at + 1 >= len(data):
            raise _fail("a packet length is cut off")
        return ((first - 192) << 8) + data[at + 1] + 192, at + 2, False
    if first == 255:
        if at + 5 > len(data):
            raise _fail("a packet length is cut off")
        return int.from_bytes(data[at + 1 : at + 5], "big"), at + 5, False
    return 1 << (first & 0x1F), at + 1, True


def _read_packet(data: bytes, at: int) -> tuple[Packet, int]:
    """The packet starting at ``at`` and the offset just after it."""
    header = data[at]
    if not header & 0x80:
        raise _fail("a packet does not start with a packet tag")
    if header & 0x40:  # new format
        tag = header & 0x3F
        length, position, partial = _new_format_length(data, at + 1)
        if partial and tag not in _ENCRYPTED_DATA_TAGS:
            raise _fail("a partial length is used where it is not allowed")
        body_start = position
        # Partial bodies: each part is followed by another length, the last
        # one definite. The parts are contiguous in a bounded buffer, so only
        # their total matters here.
        while partial:
            position += length
            if position > len(data):
                raise _fail("a packet is longer than the message")
            length, position, partial = _new_format_length(data, position)
        body_end = position + length
    else:
        tag = (header >> 2) & 0x0F
        length_type = header & 0x03
        if length_type == 3:
            raise _fail("a packet has an indeterminate length")
        size = 1 << length_type
        if at + 1 + size > len(data):
            raise _fail("a packet length is cut off")
        length = int.from_bytes(data[at + 1 : at + 1 + size], "big")
        body_start = at + 1 + size
        body_end = body_start + length
    if body_end > len(data):
        raise _fail("a packet is longer than the message")
    if tag == 0:
        raise _fail("a packet has the reserved tag 0")
    return Packet(tag, body_start, body_end), body_end


def read_packets(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> list[Packet]:
    """Every packet of ``data``, which must end exactly at a packet's end."""
    if len(data) > max_bytes:
        raise _fail(f"it is larger than {max_bytes} bytes")
    packets: list[Packet] = []
    position = 0
    while position < len(data):
        packet, position = _read_packet(data, position)
        packets.append(packet)
    return packets


def read_session_key_recipient(message: bytes) -> EncryptedSessionKey:
    """The key id a one-recipient OpenPGP message is encrypted to.

    Raises HeaderError unless ``message`` is exactly one v3 PKESK packet to a
    named (not wildcard) key with an encryption algorithm, then exactly one
    encrypted-data packet reaching the end.
    """
    packets = read_packets(message)
    if not packets:
        raise _fail("it is empty")
    if len(packets) != 2 or packets[0].tag != TAG_PKESK:
        raise _fail("it must be one encrypted session key packet and one encrypted data packet")
    data = packets[1]
    if data.tag not in _ENCRYPTED_DATA_TAGS:
        raise _fail("the second packet is not encrypted data")
    if data.tag != TAG_SEIPD or data.body_start >= data.body_end or message[data.body_start] != 1:
        raise _fail("its encrypted data is not a version 1 SEIPD packet (what gpg 2.2 reads)")
    pkesk = packets[0]
    body = message[pkesk.body_start : pkesk.body_end]
    if len(body) < 1 + _KEY_ID_BYTES + 1 + 2:
        raise _fail("the encrypted session key packet is too short")
    if body[0] != _PKESK_VERSION:
        raise _fail(f"the encrypted session key packet has version {body[0]}, not 3")
    key_id = body[1 : 1 + _KEY_ID_BYTES]
    if key_id == _WILDCARD_KEY_ID:
        raise _fail("it hides its recipient (a wildcard key id)")
    algorithm = body[1 + _KEY_ID_BYTES]
    if algorithm not in _ENCRYPTION_ALGORITHMS:
        raise _fail(f"public-key algorithm {algorithm} cannot encrypt")
    return EncryptedSessionKey(key_id=key_id.hex().upper(), algorithm=algorithm)


__all__ = ["MAX_MESSAGE_BYTES", "EncryptedSessionKey", "read_packets", "read_session_key_recipient"]
