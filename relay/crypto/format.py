"""The age v1 header: strict parsing and canonical writing.

    age-encryption.org/v1
    -> X25519 <base64 share>
    <base64 body, 64 columns, the last line shorter (possibly empty)>
    --- <base64 HMAC-SHA-256>

The header MAC is HMAC-SHA-256 under HKDF(file key, salt "", info "header"),
over every header byte up to and including the "---" of the MAC line.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from . import primitives
from .errors import HeaderError, NotAnAgeFileError

VERSION_LINE = b"age-encryption.org/v1\n"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"--- "
COLUMNS = 64
MAC_SIZE = 32
HEADER_MAC_LABEL = b"header"

# Bounds on what a header may cost to read: a hostile file cannot make us
# buffer more than this before we refuse it.
MAX_LINE_LENGTH = 4096
MAX_STANZAS = 1024
MAX_HEADER_SIZE = 1 << 20


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: a type, its arguments and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    """A parsed header; ``mac_input`` is the exact bytes the MAC covers."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes


def b64encode(data: bytes) -> str:
    """Canonical unpadded standard base64, as age writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str | bytes) -> bytes:
    """Strict unpadded base64: no padding, no junk, canonical trailing bits."""
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if len(raw) % 4 == 1 or b"=" in raw or b"\n" in raw or b"\r" in raw:
        raise HeaderError("The age header contains invalid base64.")
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HeaderError("The age header contains invalid base64.") from exc
    if b64encode(decoded).encode("ascii") != raw:
        raise HeaderError("The age header contains non-canonical base64.")
    return decoded


def _is_argument(arg: str) -> bool:
    return bool(arg) and all(0x21 <= ord(c) <= 0x7E for c in arg)


def _read_line(src: BinaryIO, consumed: int) -> bytes:
    line = src.readline(MAX_LINE_LENGTH + 1)
    if consumed + len(line) > MAX_HEADER_SIZE:
        raise HeaderError("The age header is too large.")
    if not line.endswith(b"\n"):
        if len(line) > MAX_LINE_LENGTH:
            raise HeaderError("The age header has a line that is too long.")
        raise HeaderError("The age header is truncated.")
    return line


def read_header(src: BinaryIO) -> Header:
    """Read and strictly parse a header, leaving ``src`` just after the MAC line."""
    first = src.readline(len(VERSION_LINE))
    if first != VERSION_LINE:
        if first.startswith(b"age-encryption.org/"):
            raise HeaderError("This age file uses an unsupported version.")
        raise NotAnAgeFileError
    raw = [first]
    consumed = len(first)

    def next_line() -> bytes:
        nonlocal consumed
        line = _read_line(src, consumed)
        consumed += len(line)
        raw.append(line)
        return line

    stanzas: list[Stanza] = []
    line = next_line()
    while not line.startswith(MAC_PREFIX):
        if not line.startswith(STANZA_PREFIX):
            raise HeaderError("The age header has an unexpected line.")
        if len(stanzas) >= MAX_STANZAS:
            raise HeaderError("The age header has too many recipients.")
        stanzas.append(_parse_stanza(line, next_line))
        line = next_line()
    mac = b64decode(line[len(MAC_PREFIX) : -1])
    if len(mac) != MAC_SIZE:
        raise HeaderError("The age header MAC has the wrong size.")
    mac_input = b"".join(raw[:-1]) + b"---"
    return Header(tuple(stanzas), mac, mac_input)


def _parse_stanza(first_line: bytes, next_line: Callable[[], bytes]) -> Stanza:
    try:
        words = first_line[len(STANZA_PREFIX) : -1].decode("ascii").split(" ")
    except UnicodeDecodeError as exc:
        raise HeaderError("The age header has a non-ASCII stanza.") from exc
    if not all(_is_argument(word) for word in words):
        raise HeaderError("The age header has an invalid stanza argument.")
    body_parts: list[bytes] = []
    while True:
        chunk = next_line()[:-1]
        if len(chunk) > COLUMNS:
            raise HeaderError("The age header has an over-long stanza body line.")
        body_parts.append(b64decode(chunk))
        if len(chunk) < COLUMNS:
            return Stanza(words[0], tuple(words[1:]), b"".join(body_parts))


def encode_stanza(stanza: Stanza) -> bytes:
    """The canonical encoding of one stanza."""
    words = [stanza.type, *stanza.args]
    if not all(_is_argument(word) for word in words):
        raise ValueError("invalid stanza argument")
    encoded = b64encode(stanza.body)
    lines = [encoded[i : i + COLUMNS] for i in range(0, len(encoded), COLUMNS)]
    if not lines or len(lines[-1]) == COLUMNS:
        lines.append("")
    return ("-> " + " ".join(words) + "\n" + "".join(x + "\n" for x in lines)).encode("ascii")


def header_mac_key(file_key: bytes) -> bytes:
    """The key of the header MAC, derived from the file key."""
    return primitives.hkdf_sha256(file_key, b"", HEADER_MAC_LABEL)


def write_header(stanzas: list[Stanza], file_key: bytes) -> bytes:
    """A complete, MAC'd header for ``stanzas``."""
    mac_input = VERSION_LINE + b"".join(encode_stanza(s) for s in stanzas) + b"---"
    mac = primitives.hmac_sha256(header_mac_key(file_key), mac_input)
    return mac_input + b" " + b64encode(mac).encode("ascii") + b"\n"


def verify_header_mac(header: Header, file_key: bytes) -> bool:
    """True when the header's MAC matches this file key."""
    expected = primitives.hmac_sha256(header_mac_key(file_key), header.mac_input)
    return primitives.constant_time_equal(expected, header.mac)
