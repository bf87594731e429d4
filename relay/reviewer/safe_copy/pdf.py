"""The safe copy itself: a new PDF whose pages are only the images we were sent.

Built with PyMuPDF from checked pixels (relay.reviewer.safe_copy.pixels), never
from the original: no script, link, form, annotation, embedded file, font or
metadata of the original can be in it, because nothing of the original is read
here. With OCR, each page also gets an invisible text layer (a font of this
machine, DejaVu Sans, never one of the document's) from Tesseract's word boxes;
Tesseract itself runs in the sandbox too, and its output is read as strictly as
the pixels are.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from relay.reviewer.safe_copy.pixels import Page
from relay.reviewer.safe_copy.sandbox import Limits, run_sandboxed

DPI = 150  # the converter's resolution (Dangerzone's DEFAULT_DPI)
POINTS_PER_PIXEL = 72 / DPI
OCR_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
OCR_LANGUAGES = {"ru": "rus", "uk": "ukr", "en": "eng"}
MAX_OCR_OUTPUT = 4 * 1024 * 1024
MAX_WORD = 200
_PRINTABLE = re.compile(r"[^\w\s\-.,:;!?'\"()/%&@#+=*«»—–№]", re.UNICODE)


class OcrError(RuntimeError):
    """Tesseract is missing, lacks a language, or failed on a page."""


def tesseract_languages(codes: Sequence[str]) -> str:
    """'ru,uk,en' style codes (or Tesseract's own rus/ukr/eng) as Tesseract's a+b+c."""
    names = []
    for code in codes:
        name = OCR_LANGUAGES.get(code, code)
        if name not in OCR_LANGUAGES.values():
            raise OcrError(f"OCR language {code!r}: use ru, uk or en")
        names.append(name)
    return "+".join(names)


def installed_ocr_languages() -> set[str]:
    found: set[str] = set()
    for folder in Path("/usr/share").glob("tesseract-ocr/*/tessdata"):
        found.update(path.stem for path in folder.glob("*.traineddata"))
    return found


@dataclass(frozen=True)
class Word:
    left: int
    top: int
    width: int
    height: int
    text: str


def parse_tsv(data: bytes, width: int, height: int) -> list[Word]:
    """Tesseract's TSV (sandboxed output): word rows only, each field checked."""
    words = []
    for line in data.decode("utf-8", errors="replace").splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) != 12 or fields[0] != "5":
            continue
        try:
            left, top, w, h = (int(value) for value in fields[6:10])
        except ValueError:
            continue
        text = _PRINTABLE.sub("", fields[11]).strip()[:MAX_WORD]
        if not text or w < 1 or h < 1 or left < 0 or top < 0:
            continue
        if left + w > width or top + h > height:
            continue
        words.append(Word(left, top, w, h, text))
    return words


def _read_bounded(stream: IO[bytes]) -> bytes:
    data = stream.read(MAX_OCR_OUTPUT + 1)
    if len(data) > MAX_OCR_OUTPUT:
        raise OcrError("Tesseract wrote more than its limit")
    return data


def ocr_words(png: bytes, page: Page, languages: str, limits: Limits) -> list[Word]:
    if shutil.which("tesseract") is None:
        raise OcrError("Tesseract is not installed (Debian: apt-get install tesseract-ocr)")
    fd = os.memfd_create("tiprelay-ocr-page", 0)
    try:
        os.write(fd, png)
        os.lseek(fd, 0, os.SEEK_SET)
        result, run = run_sandboxed(
            ["/usr/bin/tesseract", "stdin", "stdout", "-l", languages, "tsv"],
            stdin=fd, consume=_read_bounded, limits=limits,
        )
    finally:
        os.close(fd)
    if isinstance(result, BaseException):
        raise OcrError(str(result))
    if run.timed_out or run.returncode != 0:
        raise OcrError(f"Tesseract failed on page {page.number} (exit status {run.returncode})")
    return parse_tsv(result, page.width, page.height)


class SafePdf:
    """A PDF made page by page from pixels."""

    def __init__(self) -> None:
        pymupdf: Any = importlib.import_module("pymupdf")
        self._pymupdf = pymupdf
        self.doc: Any = pymupdf.open()
        self.pages = 0

    def add(self, page: Page) -> None:
        pymupdf = self._pymupdf
        pix = pymupdf.Pixmap(pymupdf.csRGB, page.width, page.height, page.rgb, False)
        out = self.doc.new_page(
            width=page.width * POINTS_PER_PIXEL, height=page.height * POINTS_PER_PIXEL
        )
        out.insert_image(out.rect, pixmap=pix)
        self.pages += 1

    def add_ocr(self, languages: str, limits: Limits) -> None:
        """An invisible text layer on every page, from Tesseract run in the sandbox."""
        font = {"fontname": "ocr", "fontfile": str(OCR_FONT)} if OCR_FONT.is_file() else {}
        for number, out in enumerate(self.doc, start=1):
            # Our own page (one image we made): rendered back at the converter's resolution.
            pix = out.get_pixmap(dpi=DPI)
            page = Page(number, pix.width, pix.height, b"")
            for word in ocr_words(pix.tobytes("png"), page, languages, limits):
                out.insert_text(
                    (word.left * POINTS_PER_PIXEL, (word.top + word.height) * POINTS_PER_PIXEL),
                    word.text, fontsize=max(1.0, word.height * POINTS_PER_PIXEL * 0.9),
                    render_mode=3, **font,
                )

    def save(self, target: Path) -> None:
        self.doc.set_metadata({})
        # compression_effort 30 of 100: a scanned page deflates in about a tenth of
        # the default's time, for some 10 % more bytes (bench/safe_copy.py).
        self.doc.save(target, garbage=3, deflate=True, compression_effort=30)
        self.doc.close()

    def close(self) -> None:
        self.doc.close()
