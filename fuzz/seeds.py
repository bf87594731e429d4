"""Starting inputs for each fuzz target, generated at run time (no binary corpus in git).

The age seeds are the C2SP CCTV vectors (npm package ``cctv-age``, read with
node as tests/test_age_vectors.py does) plus files our own encryptor writes;
the tar seeds are archives our own writer builds, some carrying the archive
bombs of ``fuzz/bombs.py`` as attachments; the ``unpacked`` seeds are those
bombs themselves; the form seeds are bodies shaped like the ones browsers send.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from fuzz import bombs
from relay.container.writer import build_archive
from relay.crypto import stream
from relay.crypto.armor import ArmorWriter
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.format import Stanza, write_header
from relay.crypto.identities import X25519Identity
from relay.crypto.recipients import ScryptRecipient

ROOT = Path(__file__).resolve().parent.parent
_NODE_TIMEOUT_SECONDS = 60

MULTIPART_BOUNDARY = "----tiprelayFuzzBoundary"
STREAM_KEY = bytes(range(32))
"""The fixed payload key of the STREAM target (what the key is does not matter)."""

# The reviewer identity of the decrypt target: the X25519 identity most CCTV
# vectors are encrypted to, so that fuzzed vectors reach the payload.
CCTV_IDENTITY = "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6"


def cctv_vector_bodies() -> list[bytes]:
    """The age file of every CCTV vector (the part after its own header), [] without node."""
    if shutil.which("node") is None or not (ROOT / "node_modules" / "cctv-age").is_dir():
        return []
    script = (
        "const v=require('cctv-age');const o={};"
        "for (const k of Object.keys(v)) o[k]=Buffer.from(v[k]).toString('base64');"
        "process.stdout.write(JSON.stringify(o));"
    )
    out = subprocess.run(
        ["node", "-e", script], cwd=ROOT, capture_output=True, check=True,
        timeout=_NODE_TIMEOUT_SECONDS,
    ).stdout
    bodies = []
    for raw in (base64.b64decode(data) for data in json.loads(out).values()):
        head, body = raw.split(b"\n\n", 1)
        if b"compressed: zlib" in head:
            body = zlib.decompress(body)
        bodies.append(body)
    return bodies


def _own_age_files() -> list[bytes]:
    recipient = X25519Identity.parse(CCTV_IDENTITY).recipient
    files = [encrypt_bytes(b"x" * size, [recipient]) for size in (0, 1, 100, stream.CHUNK_SIZE)]
    files.append(encrypt_bytes(b"armored", [recipient], armor=True))
    files.append(write_header([Stanza("X25519", ("a",), b"b" * 32)] * 2, bytes(16)))
    files.append(write_header(ScryptRecipient(b"pw", work_factor=1).wrap(bytes(16)), bytes(16)))
    return files


def age_files() -> list[bytes]:
    """Seeds for the header, armor, decrypt and upload-check targets."""
    return cctv_vector_bodies() + _own_age_files()


def armored_files() -> list[bytes]:
    """Armored seeds: armored CCTV vectors and our own armored output."""
    seeds = [body for body in age_files() if body.lstrip().startswith(b"-----")]
    for data in (b"", b"a", bytes(range(256)) * 3):
        out = io.BytesIO()
        writer = ArmorWriter(out)
        writer.write(data)
        writer.close()
        seeds.append(out.getvalue())
    return seeds


def stream_inputs() -> list[bytes]:
    """Seeds in the STREAM target's own encoding (see ``targets.stream_payload``)."""
    return [bytes([0, 0, 0, 0]), bytes([1, 0, 1, 0]) + b"hello", bytes([1, 2, 0, 0]) + b"\xff" * 40,
            bytes([2, 5, 3, 7]) + b"abc"]


def tar_archives() -> list[bytes]:
    """Archives our own writer builds, from the smallest to several attachments."""
    return [
        build_archive(""),
        build_archive("Привет", [("report.pdf", b"%PDF-1.4 " * 20)]),
        build_archive("m", [("a.txt", b"1"), ("a.txt", b"2"), ("x" * 150 + ".bin", b"")],
                      language="uk", sealed_by="browser", day="2026-01-02"),
        build_archive("long " * 200, [("файл с пробелом.jpg", bytes(range(256)))], language="en"),
        build_archive("bombs", [("evidence.tar", bombs.tar_bz2_bomb(2 << 30)),
                                ("notes.tar", bombs.tar_with_damaged_png())]),
        build_archive("nested", [("inner.zip", bombs.zip_of_zips(4, 4 << 20)),
                                 ("parts.tar.xz", bombs.tar_of_bombs(3, 8 << 20, "xz"))]),
    ]


def unpack_bombs() -> list[bytes]:
    """The reviewer-side archive bombs (fuzz/bombs.py), each a few KB: tar.bz2, tar in tar
    (plain, gz, xz), zip in zip, DOCX and ODT bombs, a tar with a damaged PNG; and a zip
    whose entry has an empty name (a finding of this target: zipfile's is_dir() failed)."""
    empty_name = io.BytesIO()
    with zipfile.ZipFile(empty_name, "w") as archive:
        archive.writestr(zipfile.ZipInfo(""), b"hidden")
    return [*bombs.seeds(), empty_name.getvalue()]


def tus_header_values() -> list[bytes]:
    """Header values a tus client sends (Upload-Length, Upload-Offset) and upload ids."""
    return [b"0", b"1024", b"9223372036854775807", b"0123456789abcdef0123456789abcdef",
            b"-1", b" 12", b"1e3"]


def multipart_bodies() -> list[bytes]:
    """Form bodies shaped like a browser's ``POST /submit``."""

    def part(disposition: str, body: bytes, content_type: str = "") -> bytes:
        head = f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        return head.encode() + b"\r\n" + body + b"\r\n"

    end = f"--{MULTIPART_BOUNDARY}--\r\n".encode()
    return [
        part('form-data; name="message"', "Привет".encode()) + end,
        part('form-data; name="lang"', b"uk") + part('form-data; name="message"', b"hi")
        + part('form-data; name="attachment"; filename="a.txt"', b"data", "text/plain") + end,
        part("form-data; name*=UTF-8''%D1%84; filename*=UTF-8''%D1%84.txt", b"x") + end,
        part('form-data; name="attachment"; filename=""', b"", "application/octet-stream") + end,
    ]


def openpgp_messages() -> list[bytes]:
    """The shapes of a tiprelay-openpgp stanza's body: one v3 PKESK, one encrypted packet.

    Built by hand, byte for byte, in the framings gpg and OpenPGP.js write: an
    old-format PKESK (gpg), new-format packets, and an SEIPD in partial lengths.
    """
    key_id = bytes.fromhex("D0689C6F962E8ED3")
    point = b"\x01\x07\x40" + bytes(64)  # an MPI: 263 bits, 0x40 then the point
    ecdh = bytes([3]) + key_id + bytes([18]) + point + bytes([0x30]) + bytes(48)
    rsa = bytes([3]) + key_id + bytes([1]) + b"\x0c\x00" + bytes(384)
    seipd = bytes([1]) + bytes(16 + 2 + 16 + 22)
    old_pkesk = bytes([0x84, len(ecdh)]) + ecdh
    old_rsa = bytes([0x85]) + len(rsa).to_bytes(2, "big") + rsa
    new_seipd = bytes([0xD2, len(seipd)]) + seipd
    partial_seipd = bytes([0xD2, 0xE0 + 5]) + seipd[:32] + bytes([len(seipd) - 32]) + seipd[32:]
    return [old_pkesk + new_seipd, old_rsa + new_seipd, old_pkesk + partial_seipd,
            bytes([0xC1, len(ecdh)]) + ecdh + new_seipd]


def json_bodies() -> list[bytes]:
    """The source's reply API bodies as the browser sends them, and near misses."""
    tag, token = "ab" * 32, "0f" * 32
    return [
        json.dumps({"tags": [tag] * 4}).encode(),
        json.dumps({"tag": tag}).encode(),
        json.dumps({"tag": tag, "token": token}).encode(),
        json.dumps({"tag": tag, "token": token}, indent=2).encode("utf-8"),
        b'{"tags": [[[["' + tag.encode() + b'"]]]]}',
        b'["\\", "\"[", {"a": [1e400, -0, null, true]}]',
        b"[" * 40,
    ]


HARNESS_CHECK_SEED = b"deliberate finding"


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "age_header": age_files,
    "armor": armored_files,
    "decrypt": age_files,
    "stream": stream_inputs,
    "upload_check": age_files,
    "tar": tar_archives,
    "unpacked": unpack_bombs,
    "tus_headers": tus_header_values,
    "multipart": multipart_bodies,
    "openpgp_packets": openpgp_messages,
    "json_body": json_bodies,
    "harness_check": lambda: [HARNESS_CHECK_SEED],
}
