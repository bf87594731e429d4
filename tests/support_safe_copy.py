"""Small documents for the safe-copy tests and bench, made here (no fixtures to trust).

Office files are written as their XML by hand (the smallest a real LibreOffice
opens); the PDF is made with PyMuPDF and carries what a safe copy must drop:
JavaScript, a link, a form field, an embedded file and an embedded font.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_CT = "application/vnd.openxmlformats-package.relationships+xml"


def _zip(path: Path, members: dict[str, str | bytes], stored_first: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if stored_first is not None:
            zf.writestr(zipfile.ZipInfo(stored_first), members.pop(stored_first),
                        compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _rels(target: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">'
            f'<Relationship Id="rId1" Type="{DOC_REL}" Target="{target}"/></Relationships>')


def docx_document_xml(paragraphs: list[str], page_breaks: bool = False) -> str:
    brk = '<w:r><w:br w:type="page"/></w:r>' if page_breaks else ""
    body = "".join(
        f"<w:p>{brk if i else ''}<w:r><w:t>{escape(text)}</w:t></w:r></w:p>"
        for i, text in enumerate(paragraphs)
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}" '
            f'xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>')


def _docx_members(document_xml: str | bytes) -> dict[str, str | bytes]:
    ct = (f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{CT_NS}">'
          f'<Default Extension="rels" ContentType="{RELS_CT}"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.wordprocessingml.document.main+xml"/></Types>')
    return {"[Content_Types].xml": ct, "_rels/.rels": _rels("word/document.xml"),
            "word/document.xml": document_xml}


def make_docx(path: Path, paragraphs: list[str], page_breaks: bool = False) -> Path:
    return _zip(path, _docx_members(docx_document_xml(paragraphs, page_breaks)))


def make_xlsx(path: Path, rows: list[list[str]]) -> Path:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet_rows = "".join(
        f'<row r="{r}">' + "".join(
            f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
            for c, v in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, start=1))
    ct = (f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{CT_NS}">'
          f'<Default Extension="rels" ContentType="{RELS_CT}"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.sheet.main+xml"/>'
          '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
          'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
    workbook = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" '
                f'xmlns:r="{R_NS}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/>'
                '</sheets></workbook>')
    wb_rels = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">'
               '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
               '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}">'
             f"<sheetData>{sheet_rows}</sheetData></worksheet>")
    return _zip(path, {"[Content_Types].xml": ct, "_rels/.rels": _rels("xl/workbook.xml"),
                       "xl/workbook.xml": workbook, "xl/_rels/workbook.xml.rels": wb_rels,
                       "xl/worksheets/sheet1.xml": sheet})


def make_pptx(path: Path, slides: list[str]) -> Path:
    p = "http://schemas.openxmlformats.org/presentationml/2006/main"
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"
    rel_slide = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide"
    members: dict[str, str | bytes] = {}
    overrides = ('<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.'
                 'openxmlformats-officedocument.presentationml.presentation.main+xml"/>')
    ids, rels = "", ""
    for n, text in enumerate(slides, start=1):
        overrides += (f'<Override PartName="/ppt/slides/slide{n}.xml" ContentType="application/'
                      'vnd.openxmlformats-officedocument.presentationml.slide+xml"/>')
        ids += f'<p:sldId id="{255 + n}" r:id="rId{n}"/>'
        rels += f'<Relationship Id="rId{n}" Type="{rel_slide}" Target="slides/slide{n}.xml"/>'
        members[f"ppt/slides/slide{n}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:p="{p}" xmlns:a="{a}" '
            f'xmlns:r="{R_NS}"><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/>'
            '<p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/><p:sp><p:nvSpPr>'
            '<p:cNvPr id="2" name="Text"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr>'
            '<a:xfrm><a:off x="914400" y="914400"/><a:ext cx="7315200" cy="1828800"/></a:xfrm>'
            '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr/>'
            f'<a:p><a:r><a:rPr lang="en-US" sz="4400"/><a:t>{escape(text)}</a:t></a:r></a:p>'
            "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>")
    members["[Content_Types].xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{CT_NS}">'
        f'<Default Extension="rels" ContentType="{RELS_CT}"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>')
    members["_rels/.rels"] = _rels("ppt/presentation.xml")
    members["ppt/presentation.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="{p}" xmlns:r="{R_NS}">'
        f'<p:sldIdLst>{ids}</p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/>'
        '<p:notesSz cx="6858000" cy="9144000"/></p:presentation>')
    members["ppt/_rels/presentation.xml.rels"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_RELS}">{rels}'
        "</Relationships>")
    return _zip(path, members)


def make_odt(path: Path, paragraphs: list[str]) -> Path:
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    text_ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    body = "".join(f"<text:p>{escape(t)}</text:p>" for t in paragraphs)
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               f'xmlns:office="{office}" xmlns:text="{text_ns}" office:version="1.2">'
               f"<office:body><office:text>{body}</office:text></office:body>"
               "</office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/'
                'vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path='
                '"content.xml" manifest:media-type="text/xml"/></manifest:manifest>')
    return _zip(path, {"mimetype": "application/vnd.oasis.opendocument.text",
                       "content.xml": content, "META-INF/manifest.xml": manifest},
                stored_first="mimetype")


def make_rtf(path: Path, paragraphs: list[str]) -> Path:
    body = "".join(f"{t}\\par " for t in paragraphs)
    path.write_text("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}\\f0\\fs28 " + body + "}")
    return path


def make_hostile_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF with JavaScript, a link, a form field, an embedded file and a font."""
    import pymupdf

    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page()
        page.insert_text((72, 100), f"Hostile page {n + 1}", fontsize=24, fontname="tiro",
                         fontfile=None)
        page.insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(72, 120, 300, 140),
                          "uri": "http://tracker.invalid/ping"})
    widget = pymupdf.Widget()
    widget.field_name = "name"
    widget.field_type = pymupdf.PDF_WIDGET_TYPE_TEXT
    widget.rect = pymupdf.Rect(72, 200, 300, 230)
    doc[0].add_widget(widget)
    doc.embfile_add("payload.exe", b"MZ not really a program", filename="payload.exe")
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if font.is_file():
        doc[0].insert_text((72, 300), "embedded font", fontname="dejavu", fontfile=str(font))
    doc.set_metadata({"author": "Hostile Author", "title": "secret title"})
    js_xref = doc.get_new_xref()
    doc.update_object(js_xref, "<< /S /JavaScript /JS (app.alert('pwned')) >>")
    doc.xref_set_key(doc.pdf_catalog(), "OpenAction", f"{js_xref} 0 R")
    doc.save(path)
    return path


def _write_pdf(path: Path, sizes: list[tuple[float, float]]) -> Path:
    """A plain PDF by hand (fast even for 10,000 pages): each page a small blue square."""
    content = b"0 0 1 rg 0 0 10 10 re f"
    first_page = 4
    kids = b" ".join(b"%d 0 R" % (first_page + n) for n in range(len(sizes)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(sizes)),
        b"<< /Length %d >>stream\n" % len(content) + content + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 3 0 R >>" % size
        for size in sizes
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    path.write_bytes(out.getvalue())
    return path


def make_many_pages_pdf(path: Path, pages: int) -> Path:
    return _write_pdf(path, [(100, 100)] * pages)


def make_huge_page_pdf(path: Path, points: int) -> Path:
    """One page of ``points`` × ``points`` (at 150 dpi: points × 150/72 pixels)."""
    return _write_pdf(path, [(points, points)])


def make_zip_bomb_docx(path: Path, expanded: int) -> Path:
    """A DOCX whose document.xml expands to ``expanded`` bytes from about a thousandth.

    The repeated block is compressed once after a full flush (which resets the
    compressor), so its bytes are the same every time and the file is quick to make.
    """
    head = (f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}">'
            "<w:body><w:p><w:r><w:t>")
    tail = "</w:t></w:r></w:p></w:body></w:document>"
    block = b"A" * (1 << 20)
    count = (expanded - len(head) - len(tail)) // len(block)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head.encode()) + comp.flush(zlib.Z_FULL_FLUSH)
    repeated = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    last = comp.compress(tail.encode()) + comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head.encode())
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail.encode(), crc)
    data = first + repeated * count + last
    size = len(head) + count * len(block) + len(tail)
    # The other parts with zipfile, then document.xml appended by hand (no zip64).
    members = _docx_members("")
    del members["word/document.xml"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    # Re-read the central directory of the small zip and rebuild it with one more entry.
    small = buf.getvalue()
    eocd = small.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", small[eocd + 12:eocd + 20])
    entries = struct.unpack("<H", small[eocd + 10:eocd + 12])[0]
    local_part, central = small[:cd_offset], small[cd_offset:cd_offset + cd_size]
    name = b"word/document.xml"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size,
                        len(name), 0) + name
    new_offset = len(local_part)
    central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc,
                           len(data), size, len(name), 0, 0, 0, 0, 0, new_offset) + name
    body = local_part + local + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries + 1, entries + 1, len(central),
                      len(body), 0)
    path.write_bytes(body + central + end)
    return path


def make_image(path: Path, fmt: str, size: tuple[int, int] = (400, 300)) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((50, 50, 200, 150), fill="red")
    image.save(path, fmt, **({"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"}
                            if fmt == "JPEG" else {}))
    return path
