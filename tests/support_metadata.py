"""Files that give their author away, made here for the metadata tests.

Each fixture carries values the tests look for afterwards (``SECRETS``): a
JPEG with GPS, camera make, model and body serial (Pillow writes the EXIF);
a PNG with tEXt chunks; a DOCX whose docProps name an author, a last editor
and a company; a PDF whose Info dictionary names an author and its software.
Plus hostile ones: a truncated JPEG, a JPEG whose EXIF declares far more than
it holds, and a zip bomb named .docx.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

from PIL import Image, PngImagePlugin

from tests.support_process import run

AUTHOR = "Ivan Petrov"
EDITOR = "Olga Sidorova"
COMPANY = "Ministry of Defence"
CAMERA_SERIAL = "SERIAL12345"
CAMERA_MAKE = "Canon"
CAMERA_MODEL = "Canon EOS 5D"
SECRETS = (AUTHOR, EDITOR, COMPANY, CAMERA_SERIAL, CAMERA_MODEL)


def picture() -> Image.Image:
    """A small picture with varied pixels, so that a re-encoding would show."""
    image = Image.new("RGB", (32, 24))
    image.putdata([(x * 8, y * 10, (x * y) % 256) for y in range(24) for x in range(32)])
    return image


def jpeg_with_gps_and_serial() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE
    exif[0x0110] = CAMERA_MODEL
    exif[0x0132] = "2024:05:01 10:00:00"
    exif[0x0112] = 1  # orientation: normal
    details = exif.get_ifd(0x8769)
    details[0xA431] = CAMERA_SERIAL  # BodySerialNumber
    details[0x9003] = "2024:05:01 10:00:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (55.0, 45.0, 21.0), "E", (37.0, 37.0, 4.0)
    out = io.BytesIO()
    picture().save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_with_text_chunks() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", AUTHOR)
    info.add_text("Comment", "taken at base 12")
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info)
    return out.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    'package.core-properties+xml"/><Override PartName="/docProps/app.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.extended-properties+xml"/></Types>'
)


def docx_with_author() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Orders</w:t></w:r></w:p>'
            "</w:body></w:document>",
        )
        archive.writestr(
            "docProps/core.xml",
            '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats'
            '.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/'
            f'elements/1.1/"><dc:creator>{AUTHOR}</dc:creator><cp:lastModifiedBy>{EDITOR}'
            "</cp:lastModifiedBy></cp:coreProperties>",
        )
        archive.writestr(
            "docProps/app.xml",
            '<?xml version="1.0"?><Properties xmlns="http://schemas.openxmlformats.org/'
            f'officeDocument/2006/extended-properties"><Company>{COMPANY}</Company></Properties>',
        )
    return out.getvalue()


def pdf_with_author() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        f"<< /Author ({AUTHOR}) /Creator (Microsoft Word) /Producer (Acme PDF) "
        "/CreationDate (D:20240501100000) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def truncated_jpeg() -> bytes:
    return jpeg_with_gps_and_serial()[:300]


def jpeg_with_huge_declared_exif() -> bytes:
    """A JPEG whose EXIF IFD claims 65535 entries, each of 2**31 values, far past its end."""
    entry = struct.pack(">HHII", 0x010F, 2, 0x7FFFFFFF, 0x7FFFFFF0)
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 0xFFFF) + entry * 64
    app1 = b"Exif\0\0" + tiff
    plain = io.BytesIO()
    picture().save(plain, "JPEG", quality=90)
    data = plain.getvalue()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def zip_bomb_docx(unpacked_bytes: int) -> bytes:
    """A .docx-named zip whose one entry inflates to ``unpacked_bytes`` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            block = bytes(1 << 20)
            for _ in range(unpacked_bytes >> 20):
                entry.write(block)
    return out.getvalue()


def jpeg_rotated_with_camera() -> bytes:
    """A JPEG saved sideways (EXIF orientation 6) by a named camera."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE
    exif[0x0110] = CAMERA_MODEL
    exif[0x0112] = 6
    out = io.BytesIO()
    picture().save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def docx_with_bomb_in_its_properties(unpacked_bytes: int) -> bytes:
    """A .docx whose docProps/core.xml inflates to ``unpacked_bytes``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        with archive.open("docProps/core.xml", "w", force_zip64=True) as entry:
            block = b"<a>" + bytes(1 << 20)
            for _ in range(unpacked_bytes >> 20):
                entry.write(block)
    return out.getvalue()


def jpeg_picture_data(data: bytes) -> bytes:
    """Everything from the start-of-scan marker on: the coded picture itself."""
    offset = 2
    while data[offset + 1] != 0xDA:
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    return data[offset:]


def png_chunk_types(data: bytes) -> list[str]:
    types, offset = [], 8
    while offset < len(data):
        length = struct.unpack(">I", data[offset : offset + 4])[0]
        types.append(data[offset + 4 : offset + 8].decode("latin-1"))
        offset += 12 + length
    return types


def pixels(data: bytes) -> bytes:
    """The decoded RGB pixels (Pillow), ignoring any orientation tag."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def tiff_with_camera() -> bytes:
    """A TIFF (as camera raw files are) naming the camera: read, but not rewritten, by the page."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE
    exif[0x0110] = CAMERA_MODEL
    out = io.BytesIO()
    picture().save(out, "TIFF", exif=exif)
    return out.getvalue()


def jpeg_with_jfif_thumbnail() -> bytes:
    """A JPEG whose JFIF segment carries a 2x2 thumbnail (it may show an uncropped picture)."""
    plain = io.BytesIO()
    picture().save(plain, "JPEG", quality=90)
    data = plain.getvalue()
    assert data[2:4] == b"\xff\xe0"
    old_length = struct.unpack(">H", data[4:6])[0]
    thumbnail = bytes([200, 10, 10] * 4)
    body = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x02\x02" + thumbnail
    return data[:2] + b"\xff\xe0" + struct.pack(">H", len(body) + 2) + body + data[4 + old_length :]


def exiftool_tags(path: Path) -> dict:
    """What exiftool (an independent reader) finds inside the file, not the file system's times."""
    result = run(["exiftool", "-j", "-a", "-G1", str(path)], capture_output=True, timeout=60)
    tags = json.loads(result.stdout)[0]
    return {tag: value for tag, value in tags.items() if not tag.startswith("System:")}


FIXTURE_MAKERS = {
    "photo.jpg": jpeg_with_gps_and_serial,
    "rotated.jpg": jpeg_rotated_with_camera,
    "shot.png": png_with_text_chunks,
    "report.docx": docx_with_author,
    "paper.pdf": pdf_with_author,
}


def write_fixtures(folder: Path, names: tuple[str, ...] = tuple(FIXTURE_MAKERS)) -> dict[str, Path]:
    """Write the named fixture files into ``folder``; their paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        paths[name] = folder / name
        paths[name].write_bytes(FIXTURE_MAKERS[name]())
    return paths
