"""One fuzz target per parser of untrusted bytes.

Each target feeds one input to one parser. The parser may refuse it only with
its documented error (relay's own error classes; for aiohttp's multipart
reader, the errors relay/server/submit.py maps to "malformed form"). Any other
exception, a broken round-trip property, or an input that takes too long
(libFuzzer's -timeout) is a finding.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from multidict import CIMultiDict

from fuzz.seeds import (
    CCTV_IDENTITY,
    HARNESS_CHECK_SEED,
    MULTIPART_BOUNDARY,
    SEEDS,
    STREAM_KEY,
)
from relay.container.names import sanitize_name
from relay.container.reader import extract_submission
from relay.crypto import armor, format, stream
from relay.crypto.decrypt import decrypt_bytes
from relay.crypto.errors import AgeError, ArmorError, HeaderError, PayloadError
from relay.crypto.identities import X25519Identity
from relay.crypto.openpgp_packets import read_session_key_recipient
from relay.errors import ContainerError
from relay.server import source_replies, submit, uploads
from relay.server.json_body import MAX_JSON_DEPTH, JSONBodyError, nesting_depth, parse_json_body
from relay.server.problems import SourceProblem
from relay.server.upload_check import ExpectedRecipients, UploadRejected, check_sealed_upload
from relay.unpacking import measure_unpacked

MAX_INPUT_BYTES = 64 * 1024
"""libFuzzer's -max_len for every target: enough for several tar entries or a
multi-line header; the STREAM target builds its large payloads from small inputs."""


@dataclass(frozen=True)
class Target:
    """A parser under fuzzing: ``run(data)`` raises only for a finding."""

    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    expected: str
    """The refusals that count as correct behaviour, for the report."""


# --- age -------------------------------------------------------------------------


def age_header(data: bytes) -> None:
    """read_header: HeaderError, or a header whose stanzas re-encode to the same bytes."""
    try:
        header = format.read_header(io.BytesIO(data))
    except HeaderError:
        return
    # The parser is strict: whatever it accepts is canonical, so writing the
    # stanzas again gives the bytes the MAC covers.
    encoded = format.VERSION_LINE + b"".join(map(format.encode_stanza, header.stanzas)) + b"---"
    assert encoded == header.mac_input, "accepted a header that does not re-encode to itself"


def armor_reader(data: bytes) -> None:
    """ArmorReader: ArmorError, or bytes that armor back to an input the reader accepts."""
    try:
        decoded = _read_all(armor.ArmorReader(io.BufferedReader(io.BytesIO(data))))
    except ArmorError:
        return
    out = io.BytesIO()
    writer = armor.ArmorWriter(out)
    writer.write(decoded)
    writer.close()
    again = _read_all(armor.ArmorReader(io.BufferedReader(io.BytesIO(out.getvalue()))))
    assert again == decoded, "armor round trip changed the data"


def _read_all(reader: armor.ArmorReader) -> bytes:
    chunks = []
    while chunk := reader.read(4096):
        chunks.append(chunk)
    return b"".join(chunks)


_IDENTITIES = [X25519Identity.parse(CCTV_IDENTITY)]


def decrypt(data: bytes) -> None:
    """The whole reviewer-side decryption (armor, header, MAC, payload): AgeError only."""
    try:
        decrypt_bytes(data, _IDENTITIES)
    except AgeError:
        return


def stream_payload(data: bytes) -> None:
    """STREAM opening, on raw ciphertext or on a real payload the input damages.

    Byte 0 picks the mode: even, ``data[1:]`` is the payload as it is; odd, a
    payload is sealed from a plaintext of ``data[1] * 4099 + len(data)`` bytes
    (up to ~1 MiB, so chunk boundaries are crossed), then cut at the position
    ``data[2:4]`` selects and, when ``data[2]`` is odd, one byte there flipped.
    An undamaged payload must open to its plaintext; a damaged one must fail
    with PayloadError.
    """
    if len(data) < 4 or data[0] % 2 == 0:
        try:
            _open(data[1:])
        except PayloadError:
            return
        return
    length = data[1] * 4099 + len(data)
    pattern = data[4:] or b"\0"
    plaintext = (pattern * (length // len(pattern) + 1))[:length]
    sealed = _seal(plaintext)
    where = int.from_bytes(data[2:4], "big") * len(sealed) // 65536
    damaged = sealed
    if data[2] % 2:
        damaged = sealed[:where] + bytes([sealed[where] ^ 0x01]) + sealed[where + 1 :]
    elif where and data[3] % 2:
        damaged = sealed[:where]
    if damaged == sealed:
        assert _open(sealed) == plaintext, "an undamaged payload opened to other bytes"
        return
    try:
        _open(damaged)
    except PayloadError:
        return
    raise AssertionError("a damaged payload opened without error")


def _seal(plaintext: bytes) -> bytes:
    sealed = stream.seal_blocks(STREAM_KEY, io.BytesIO(plaintext).readinto)
    return b"".join(bytes(x) for x in sealed)


def _open(payload: bytes) -> bytes:
    return b"".join(bytes(x) for x in stream.open_blocks(STREAM_KEY, io.BytesIO(payload).readinto))


@functools.cache
def _scratch_dir(purpose: str) -> Path:
    """A folder for one target's files, made on first use (``fuzz.run`` removes its TMPDIR)."""
    folder = Path(tempfile.mkdtemp(prefix=f"tiprelay-fuzz-{purpose}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def upload_check(data: bytes) -> None:
    """The server's check of a finished tus upload: UploadRejected only."""
    path = _scratch_dir("upload") / "upload"
    path.write_bytes(data)
    try:
        check_sealed_upload(path, ExpectedRecipients(1 + len(data) % 3, {}))
    except UploadRejected:
        return


# --- tar ---------------------------------------------------------------------------



def tar(data: bytes) -> None:
    """extract_submission: ContainerError, and never anything left behind on refusal."""
    folder = _scratch_dir("tar")
    dest = folder / "out"
    try:
        result = extract_submission(io.BytesIO(data), dest)
    except ContainerError:
        leftovers = list(folder.iterdir())
        assert not leftovers, f"a refused archive left {leftovers}"
        return
    try:
        # What was extracted is exactly what the result lists, under safe names.
        written = {p.name: p.stat().st_size for p in (dest / "files").iterdir()}
        assert written == dict(result.files), (written, result.files)
        assert all(sanitize_name(name) == name for name in written), written
        assert {p.name for p in dest.iterdir()} == {"files", "message.txt", "submission.json"}
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# --- archives mat2 would unpack ---------------------------------------------------

UNPACK_LIMIT = 16 << 20
"""The ``unpacked`` target's limit: small, so that a bomb costs milliseconds."""


def unpacked(data: bytes) -> None:
    """measure_unpacked: a count or a problem, never an exception; at most the limit
    (and the one chunk that crossed it) read; nothing left in its spool folder."""
    folder = _scratch_dir("unpacked")
    path = folder / "attachment"
    path.write_bytes(data)
    spool = folder / "spool"
    spool.mkdir(exist_ok=True)
    result = measure_unpacked(path, UNPACK_LIMIT, spool, timeout_seconds=60)
    assert result.size <= UNPACK_LIMIT + (1 << 20), result
    assert result.over_limit or result.size <= UNPACK_LIMIT, result
    assert not (result.over_limit and result.problem), result
    leftovers = list(spool.iterdir())
    assert not leftovers, f"measuring left {leftovers}"


# --- server-side parsers -------------------------------------------------------------


def tus_headers(data: bytes) -> None:
    """Upload-Length/Upload-Offset parsing and the upload id check, on any header value."""
    value = data.decode("latin-1")  # how aiohttp decodes header values
    number = uploads._parse_non_negative(value)
    if number is not None:
        assert 0 <= number < 10**19 and str(number) == value.lstrip("0").rjust(1, "0"), (
            f"{value!r} parsed as {number}"
        )
    if uploads._UPLOAD_ID.fullmatch(value):
        assert len(value) == 32 and set(value) <= set("0123456789abcdef")


_loop = asyncio.new_event_loop()
_FORM_HEADERS = CIMultiDict(
    {"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}
)
_PART_READ_LIMIT = 256 * 1024


def multipart(data: bytes) -> None:
    """aiohttp's multipart reader as submit.py drives it, and submit.py's name parsing.

    Errors submit.py maps to "malformed form" (its _MALFORMED_BODY_ERRORS) are
    expected from aiohttp's reader; the field/file-name parsing may only raise
    SourceProblem.
    """
    _loop.run_until_complete(_read_form(data))


async def _read_form(data: bytes) -> None:
    content = StreamReader(BaseProtocol(_loop), 2**16, loop=_loop)
    content.feed_data(data)
    content.feed_eof()
    reader = MultipartReader(_FORM_HEADERS, content)
    try:
        for _ in range(1000):
            part = await reader.next()
            if part is None:
                return
            if not isinstance(part, BodyPartReader):
                return  # refused by submit.py as a nested multipart
            try:
                submit._field_and_file_name(part)
            except SourceProblem:
                return
            read = 0
            while not part.at_eof() and read <= _PART_READ_LIMIT:
                read += len(await part.read_chunk(64 * 1024))
    except submit._MALFORMED_BODY_ERRORS:
        return


def openpgp_packets(data: bytes) -> None:
    """The PKESK reader the relay runs on browser uploads: HeaderError, or a key id."""
    try:
        recipient = read_session_key_recipient(data)
    except HeaderError:
        return
    assert len(recipient.key_id) == 16 and recipient.key_id != "0" * 16


_RING_SLOTS = 4


def json_body(data: bytes) -> None:
    """Every JSON body an anonymous client sends (the source's reply API): the bounded
    parser, then the index, fetch and delete shape checks, on the same value.

    JSONBodyError only; what the parser accepts is nested at most MAX_JSON_DEPTH
    levels, and a shape the checks accept has exactly the fields they name.
    """
    try:
        value = parse_json_body(data)
    except JSONBodyError:
        return
    assert nesting_depth(data.decode("utf-8")) <= MAX_JSON_DEPTH, "accepted a deep body"
    if not isinstance(value, dict):
        return
    tags = source_replies.index_tags(value, _RING_SLOTS)
    if tags is not None:
        assert len(tags) == _RING_SLOTS and list(value) == ["tags"], value
    tag = source_replies.fetch_tag(value)
    if tag is not None:
        assert value == {"tag": tag}, value
    tag_and_token = source_replies.delete_tag_and_token(value)
    if tag_and_token is not None:
        assert value == {"tag": tag_and_token[0], "token": tag_and_token[1].hex()}, value


def harness_check(data: bytes) -> None:
    """Not a parser: fails on its seed, so a test can see that findings are reported."""
    if data.startswith(HARNESS_CHECK_SEED):
        raise IndexError("the harness check's deliberate finding")


def _target(name: str, run: Callable[[bytes], None], expected: str) -> Target:
    return Target(name, run, SEEDS[name], expected)


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        _target("age_header", age_header, "HeaderError"),
        _target("armor", armor_reader, "ArmorError"),
        _target("decrypt", decrypt, "AgeError"),
        _target("stream", stream_payload, "PayloadError"),
        _target("upload_check", upload_check, "UploadRejected"),
        _target("tar", tar, "ContainerError"),
        _target("unpacked", unpacked, "none (returns a count or a problem)"),
        _target("tus_headers", tus_headers, "none (returns None)"),
        _target("multipart", multipart, "SourceProblem; submit._MALFORMED_BODY_ERRORS"),
        _target("openpgp_packets", openpgp_packets, "HeaderError"),
        _target("json_body", json_body, "JSONBodyError"),
        _target("harness_check", harness_check, "nothing: its seed is a finding"),
    )
}

__all__ = ["MAX_INPUT_BYTES", "TARGETS", "Target"]
