"""The plaintext of a reply: a padded tar whose first two members authenticate it.

Byte for byte (docs/conversations.md "The reply container"; headers as in
``relay.container.tarformat``: mode 0644, owner 0, mtime 0, pax for long or
non-ASCII paths):

    reply.mac      32 bytes: HMAC-SHA-256(auth key, b"tiprelay/reply/v1\\0" || reply.json)
    reply.json     {"conversation_id": hex, "day": "YYYY-MM-DD", "entries": [{"name",
                   "sha256", "size"}...], "n": 1.., "v": 1}; keys sorted, 2-space
                   indent, UTF-8, final newline. The MAC covers these exact bytes.
    message.txt    the reply's text, UTF-8 (always the first entry)
    files/<name>   each attachment, in entry order
    end of archive two zero blocks, then zeros to the Padmé length

``read_reply`` checks, in this order, and raises one error type per failure
(``ReplyError.kind``, for a page to count, never to show the content of):
size caps; the two fixed headers (the only parsing before the MAC); ``reply.mac``
in constant time; then reply.json, the conversation id, n against the slot the
reply came from, and every entry against the tar's actual members (names,
sizes, SHA-256, nothing more, zeros after). All work is bounded by ``ReplyLimits``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from relay.container import tarformat
from relay.container.names import NameAllocator, sanitize_name
from relay.conversation.slots import DEFAULT_RING_SIZE, slot_of_reply
from relay.crypto import primitives
from relay.crypto.padding import padme_length
from relay.errors import ContainerError, TiprelayError

REPLY_FORMAT_VERSION = 1
MAC_LABEL = b"tiprelay/reply/v1\0"
MAC_PATH = "reply.mac"
META_PATH = "reply.json"
MESSAGE_PATH = "message.txt"
FILES_DIR = "files/"
_BLOCK = tarformat.BLOCK_SIZE
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ReplyLimits:
    """Bounds on what one (possibly hostile) reply may make a reader do.

    A relay sets the first two from its settings ``max_reply_bytes`` and
    ``max_reply_entries`` (config/relay.toml), whose defaults are these.
    """

    max_reply_bytes: int = 16 * 1024 * 1024
    """Padded plaintext size; a reply is read whole, in memory."""
    max_entries: int = 64
    """Entries in reply.json: the message plus attachments."""
    max_meta_bytes: int = 64 * 1024
    """Size of reply.json."""
    max_pax_header_bytes: int = 8 * 1024


class ReplyError(TiprelayError):
    """This reply could not be read."""

    kind = "unreadable"


class ReplyTooLargeError(ReplyError):
    """This reply is larger than a reply may be."""

    kind = "too_large"


class ReplyMalformedError(ReplyError):
    """This reply is not a reply container."""

    kind = "malformed"


class ReplyNotAuthenticError(ReplyError):
    """This reply was not written by a holder of the conversation's keys."""

    kind = "not_authentic"


class ReplyWrongConversationError(ReplyError):
    """This reply belongs to another conversation."""

    kind = "wrong_conversation"


class ReplyWrongSlotError(ReplyError):
    """This reply was moved from the slot it was written for."""

    kind = "wrong_slot"


class ReplyEntriesMismatchError(ReplyError):
    """This reply's files do not match what its authenticated list says."""

    kind = "entries_mismatch"


@dataclass(frozen=True)
class ReplyAttachment:
    name: str
    """The sanitised file name (without ``files/``)."""
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Reply:
    """A reply that passed every check."""

    n: int
    day: str
    message: str = field(repr=False)  # plaintext stays out of logs and tracebacks
    attachments: tuple[ReplyAttachment, ...] = ()


def reply_mac(auth_key: bytes, meta_bytes: bytes) -> bytes:
    """HMAC-SHA-256(auth key, b"tiprelay/reply/v1\\0" || the exact bytes of reply.json)."""
    if len(auth_key) != primitives.KEY_SIZE:
        raise ValueError("the auth key must be 32 bytes")
    return primitives.hmac_sha256(auth_key, MAC_LABEL + meta_bytes)


def _entry(path: str, data: bytes) -> bytes:
    return tarformat.file_header(path, len(data)) + data + tarformat.padding_after(len(data))


def build_reply(
    *,
    auth_key: bytes,
    conversation_id: bytes,
    n: int,
    day: date | str,
    message: str,
    attachments: Iterable[tuple[str, bytes]] = (),
) -> bytes:
    """A whole padded reply container, in memory (replies are small)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError("reply numbers start at 1")
    day_text = day.isoformat() if isinstance(day, date) else day
    if not _valid_day(day_text):
        raise ValueError(f"the day {day_text!r} is not YYYY-MM-DD")
    names = NameAllocator()
    members = [(MESSAGE_PATH, message.encode("utf-8"))]
    members += [(FILES_DIR + names.allocate(name), data) for name, data in attachments]
    meta = {
        "v": REPLY_FORMAT_VERSION,
        "conversation_id": conversation_id.hex(),
        "n": n,
        "day": day_text,
        "entries": [
            {"name": path, "size": len(data), "sha256": primitives.sha256(data).hex()}
            for path, data in members
        ],
    }
    meta_bytes = (json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    archive = _entry(MAC_PATH, reply_mac(auth_key, meta_bytes)) + _entry(META_PATH, meta_bytes)
    archive += b"".join(_entry(path, data) for path, data in members) + tarformat.END_OF_ARCHIVE
    return archive + bytes(padme_length(len(archive)) - len(archive))


def _valid_day(text: object) -> bool:
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class _Cursor:
    """Reads tar members front to back from bytes; raises ContainerError."""

    def __init__(self, data: bytes, limits: ReplyLimits) -> None:
        self.data = data
        self.offset = 0
        self.limits = limits

    def _block(self) -> bytes:
        block = self.data[self.offset : self.offset + _BLOCK]
        if len(block) != _BLOCK:
            raise ContainerError("The archive ends early.")
        return block

    def _body(self, size: int) -> bytes:
        end = self.offset + _BLOCK + size
        if end > len(self.data):
            raise ContainerError("The archive ends early.")
        body = self.data[self.offset + _BLOCK : end]
        self.offset += _BLOCK + size + (-size % _BLOCK)
        return body

    def member(self, max_size: int, *, allow_pax: bool = True) -> tuple[str, bytes]:
        """The next regular file as (path, data); no more than ``max_size`` bytes."""
        header = tarformat.RawHeader(self._block(), self.offset)
        path_override: str | None = None
        size_override: int | None = None
        if header.typeflag == tarformat.PAX_HEADER and allow_pax:
            if header.size > self.limits.max_pax_header_bytes:
                raise ContainerError("A pax header is too large.")
            records = tarformat.parse_pax_records(self._body(header.size))
            if set(records) - {"path", "size"}:
                raise ContainerError("A pax header has unexpected records.")
            if "path" in records:
                path_override = records["path"].decode("utf-8")
            if "size" in records:
                if not records["size"].isdigit() or len(records["size"]) > 19:
                    raise ContainerError("A pax size is not a number.")
                size_override = int(records["size"])
            header = tarformat.RawHeader(self._block(), self.offset)
        if header.typeflag not in (tarformat.REGULAR_FILE, tarformat.REGULAR_FILE_OLD):
            raise ContainerError("A member is not a regular file.")
        size = header.size if size_override is None else size_override
        if size > max_size:
            raise ContainerError("A member is larger than allowed.")
        path = path_override if path_override is not None else header.name.decode("utf-8")
        return path, self._body(size)

    def at_clean_end(self) -> bool:
        """Whether only the end-of-archive blocks and zero padding remain."""
        rest = len(self.data) - self.offset
        return rest >= 2 * _BLOCK and self.data.count(0, self.offset) == rest


def read_reply(
    plaintext: bytes,
    *,
    auth_key: bytes,
    conversation_id: bytes,
    slot: int,
    ring_size: int = DEFAULT_RING_SIZE,
    limits: ReplyLimits | None = None,
) -> Reply:
    """The reply in ``plaintext`` (decrypted from slot ``slot``), or a ReplyError."""
    limits = limits or ReplyLimits()
    if len(plaintext) > limits.max_reply_bytes:
        raise ReplyTooLargeError
    cursor = _Cursor(bytes(plaintext), limits)
    try:
        # Two plain ustar headers (no pax) are all that is parsed before the MAC.
        mac_path, mac = cursor.member(primitives.KEY_SIZE, allow_pax=False)
        meta_path, meta_bytes = cursor.member(limits.max_meta_bytes, allow_pax=False)
    except (ContainerError, UnicodeDecodeError):
        raise ReplyMalformedError from None
    if mac_path != MAC_PATH or meta_path != META_PATH or len(mac) != primitives.KEY_SIZE:
        raise ReplyMalformedError
    if not primitives.constant_time_equal(reply_mac(auth_key, meta_bytes), mac):
        raise ReplyNotAuthenticError
    meta = _parse_meta(meta_bytes, limits)
    if not primitives.constant_time_equal(
        meta["conversation_id"].encode("utf-8"), conversation_id.hex().encode("ascii")
    ):
        raise ReplyWrongConversationError
    if slot_of_reply(meta["n"], ring_size) != slot:
        raise ReplyWrongSlotError
    contents = _check_entries(cursor, meta["entries"], limits)
    try:
        message = contents[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ReplyMalformedError from None
    attachments = tuple(
        ReplyAttachment(entry["name"][len(FILES_DIR) :], data)
        for entry, data in zip(meta["entries"][1:], contents[1:], strict=True)
    )
    return Reply(meta["n"], meta["day"], message, attachments)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_meta(meta_bytes: bytes, limits: ReplyLimits) -> dict[str, Any]:
    """reply.json, strictly: exactly the fields above, with valid values."""
    try:
        meta = json.loads(
            meta_bytes.decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError):
        raise ReplyMalformedError from None
    if not isinstance(meta, dict) or set(meta) != {"v", "conversation_id", "n", "day", "entries"}:
        raise ReplyMalformedError
    n, entries = meta["n"], meta["entries"]
    if meta["v"] != REPLY_FORMAT_VERSION or type(meta["v"]) is not int:
        raise ReplyMalformedError
    if not isinstance(meta["conversation_id"], str) or not _valid_day(meta["day"]):
        raise ReplyMalformedError
    if type(n) is not int or not 1 <= n < 2**53:
        raise ReplyMalformedError
    if not isinstance(entries, list) or not 1 <= len(entries) <= limits.max_entries:
        raise ReplyMalformedError
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"name", "size", "sha256"}:
            raise ReplyMalformedError
        name, size, digest = entry["name"], entry["size"], entry["sha256"]
        if type(size) is not int or not 0 <= size <= limits.max_reply_bytes:
            raise ReplyMalformedError
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise ReplyMalformedError
        if not isinstance(name, str) or not _valid_entry_name(name, position):
            raise ReplyMalformedError
    if len({entry["name"].lower() for entry in entries}) != len(entries):
        raise ReplyMalformedError
    return meta


def _valid_entry_name(name: str, position: int) -> bool:
    if position == 0:
        return name == MESSAGE_PATH
    if not name.startswith(FILES_DIR):
        return False
    stored = name[len(FILES_DIR) :]
    return bool(stored) and sanitize_name(stored) == stored


def _check_entries(
    cursor: _Cursor, entries: list[dict[str, Any]], limits: ReplyLimits
) -> list[bytes]:
    contents = []
    try:
        for entry in entries:
            path, data = cursor.member(limits.max_reply_bytes)
            if path != entry["name"] or len(data) != entry["size"]:
                raise ReplyEntriesMismatchError
            expected = bytes.fromhex(entry["sha256"])
            if not primitives.constant_time_equal(primitives.sha256(data), expected):
                raise ReplyEntriesMismatchError
            contents.append(data)
    except (ContainerError, UnicodeDecodeError):
        raise ReplyEntriesMismatchError from None
    if not cursor.at_clean_end():
        raise ReplyEntriesMismatchError
    return contents
