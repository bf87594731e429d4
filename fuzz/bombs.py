"""Small archives that unpack to a lot: the reviewer-side bombs, made by code.

Used as fuzz seeds (``fuzz/seeds.py``) and by the tests of metadata inspection
and scrubbing. Each is a few KB however much it unpacks to:

- ``tar_bz2_bomb``: a tar of one file of zeros, bzip2-compressed. bzip2 turns
  45 MiB of zeros into an 81-byte stream and every bzip2 reader (Python's,
  GNU tar's, mat2's) reads concatenated streams as one, so the bomb is made
  from copies of one stream: gigabytes in milliseconds;
- ``tar_bz2_files``: the same spread over many files, none of them large;
- ``tar_of_bombs``: a plain tar holding several of those (tar in tar), each
  under a per-file limit, together far over it;
- ``zip_of_zips``: zips inside a zip, each inner member deflated zeros;
- ``office_bomb``: a DOCX or ODT whose own zip members are large;
- ``tar_with_damaged_png``: a tar holding a text file and a cut PNG, on which
  mat2 fails after it has unpacked the text;
- ``disguised_tar``: a plain tar that starts like a bzip2 stream.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import lzma
import tarfile
import zipfile
import zlib
from pathlib import Path

from relay.container.writer import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.manifest import SubmissionInfo, write_manifest

_BZ2_RUN = 45 << 20
"""Zeros per bzip2 stream: about what one 900 kB block holds after bzip2's run-length step."""

SECRET_TEXT = b"The convoy leaves depot 7 at 04:00. -- a source\n"
"""The plaintext of ``tar_with_damaged_png``'s text file: a test looks for it on disk."""


@functools.cache
def _bz2_zeros(count: int) -> bytes:
    return bz2.compress(bytes(count), 9)


def _bz2_of(prefix: bytes, zeros: int) -> bytes:
    """bzip2 of ``prefix`` then ``zeros`` zero bytes, as concatenated streams."""
    whole, rest = divmod(zeros, _BZ2_RUN)
    parts = [bz2.compress(prefix, 9), _bz2_zeros(_BZ2_RUN) * whole]
    if rest:
        parts.append(_bz2_zeros(rest))
    return b"".join(parts)


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 1_700_000_000
    info.mode = 0o644
    return info.tobuf(tarfile.GNU_FORMAT)


def tar_bz2_bomb(unpacked: int, name: str = "zeros.bin") -> bytes:
    """A tar.bz2 whose one file holds ``unpacked`` zero bytes (a multiple of 512)."""
    assert unpacked % 512 == 0
    # After the header everything is zeros: the file, then the two end blocks.
    return _bz2_of(_tar_header(name, unpacked), unpacked + 2 * 512)


def tar_bz2_files(count: int, each: int) -> bytes:
    """A tar.bz2 of ``count`` files of ``each`` zero bytes (a multiple of 512), none of them big."""
    assert each % 512 == 0
    parts = [_bz2_of(_tar_header(f"zeros-{number}.bin", each), each) for number in range(count)]
    return b"".join(parts) + bz2.compress(bytes(2 * 512), 9)


def plain_tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tar_of_bombs(count: int, each: int, compression: str = "") -> bytes:
    """A tar (``compression`` "", "gz", "bz2" or "xz") of ``count`` tar.bz2 bombs of ``each``."""
    inner = tar_bz2_bomb(each)
    data = plain_tar([(f"part-{number}.tar.bz2", inner) for number in range(count)])
    if compression == "gz":
        return gzip.compress(data, mtime=0)
    if compression == "bz2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data)
    return data


def _deflated_zeros_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    """A stored-as-deflate member of ``size`` zeros, compressed once per MiB pattern."""
    with archive.open(name, "w", force_zip64=size >= 1 << 31) as entry:
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            entry.write(block)
        entry.write(bytes(size & ((1 << 20) - 1)))


def zip_of_zips(count: int, each: int) -> bytes:
    """A zip of ``count`` zips, each holding one deflated member of ``each`` zeros."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        _deflated_zeros_member(archive, "zeros.bin", each)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(count):
            archive.writestr(f"inner-{number}.zip", inner.getvalue())
    return out.getvalue()


_DOCX_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)


def office_bomb(kind: str, members: int, each: int) -> bytes:
    """A DOCX or ODT (``kind``) whose ``members`` XML parts each hold ``each`` zero bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "odt":
            archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
            archive.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest/>')
            names = [f"Pictures/part-{number}.xml" for number in range(members)]
        else:
            archive.writestr("[Content_Types].xml", _DOCX_TYPES)
            names = [f"word/part-{number}.xml" for number in range(members)]
        for name in names:
            _deflated_zeros_member(archive, name, each)
    return out.getvalue()


def damaged_png() -> bytes:
    """A PNG signature and header chunk, then nothing: every reader refuses it."""
    header = b"IHDR" + (32).to_bytes(4, "big") + (24).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    crc = zlib.crc32(header).to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + header + crc + b"\0\0\0\x10IDAT"


def tar_with_damaged_png() -> bytes:
    """A tar of a text file (``SECRET_TEXT``) and a damaged PNG: mat2 unpacks, then fails."""
    return plain_tar([("a-notes.txt", SECRET_TEXT), ("b-photo.png", damaged_png())])


def disguised_tar(each: int) -> bytes:
    """A plain tar whose first name starts like a bzip2 stream, then a tar.bz2 bomb of ``each``.

    tarfile (so mat2) reads it as the plain tar it is; a reader that trusts the
    magic number first sees damaged bzip2 and no archive.
    """
    return plain_tar([("BZh91AY&SY", b"x"), ("bomb.tar.bz2", tar_bz2_bomb(each))])


def seeds() -> list[bytes]:
    """Every bomb at a small size (the fuzz seeds: under libFuzzer's 64 KiB max_len)."""
    return [
        tar_bz2_bomb(64 << 20),
        tar_of_bombs(4, 16 << 20),
        tar_of_bombs(3, 8 << 20, "gz"),
        tar_of_bombs(3, 8 << 20, "xz"),
        zip_of_zips(4, 4 << 20),
        office_bomb("docx", 2, 4 << 20),
        office_bomb("odt", 2, 4 << 20),
        tar_with_damaged_png(),
        disguised_tar(16 << 20),
    ]


def tip_bundle(
    folder: Path, tips: list[list[tuple[str, bytes]]], day: str = "2026-03-04"
) -> tuple[Path, Path, list[str]]:
    """A pulled bundle in ``folder`` of one tip per list of (name, data) attachments.

    Returns the bundle folder, an identity file that opens it, and the tips' ids.
    """
    identity = X25519Identity.generate()
    identity_file = folder / "reviewer.identity"
    identity_file.write_text(f"{identity}\n")
    identity_file.chmod(0o600)
    bundle = folder / "bundle"
    bundle.mkdir()
    infos = []
    for number, attachments in enumerate(tips):
        plaintext = build_archive("see attached", attachments, day=day, sealed_by="browser")
        ciphertext = encrypt_bytes(plaintext, [identity.recipient])
        info = SubmissionInfo(f"{number:032x}", day, len(ciphertext),
                              hashlib.sha256(ciphertext).hexdigest(), "browser")
        (bundle / info.file_name).write_bytes(ciphertext)
        infos.append(info)
    write_manifest(bundle, infos)
    return bundle, identity_file, [info.id for info in infos]
