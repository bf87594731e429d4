"""How fast safe copies are made: pages per second, sandbox and all.

Two documents, made here: a 20-page DOCX (text, one page break per page: the
LibreOffice path, whose start-up is part of the price) and a 50-page scanned
PDF (each page one A4 greyscale photo-like image at 150 dpi: the PyMuPDF
path, where rendering and the pixel stream dominate). Each goes through
``make_safe_copy`` exactly as ``tiprelay safe-copy`` runs it: bubblewrap,
Dangerzone's converter, the strict pixel reader, the image-only PDF. ``--ocr``
adds the Tesseract text layer (ru, uk, en) to the scanned PDF's run.

The copy's pages are lossless (deflated RGB), so a copy of a JPEG scan is larger
than the scan: the bench's pages are noisy on purpose (a worst case for size),
about 2.7 MiB each, where a clean text page is some 0.2 MiB.

    .venv/bin/python bench/safe_copy.py
    .venv/bin/python bench/safe_copy.py --runs 3 --ocr
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.reviewer.safe_copy import make_safe_copy
from tests.support_safe_copy import make_docx

WORDS = ["tip", "source", "relay", "reviewer", "document", "page", "safe", "copy", "sandbox",
         "pixels"]


def docx_20_pages(folder: Path) -> Path:
    rng = random.Random(20)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(300)) for _ in range(20)]
    return make_docx(folder / "twenty.docx", paragraphs, page_breaks=True)


def scanned_pdf_50_pages(folder: Path) -> Path:
    rng = random.Random(50)
    doc = pymupdf.open()
    for number in range(50):
        scan = Image.effect_noise((1240, 1754), 40).convert("RGB")
        draw = ImageDraw.Draw(scan)
        for line in range(40):
            draw.text((120, 120 + line * 38), f"{number + 1}: " + " ".join(
                rng.choice(WORDS) for _ in range(12)), fill=(20, 20, 20))
        scan = scan.filter(ImageFilter.GaussianBlur(0.6))
        path = folder / "scan.jpg"
        scan.save(path, "JPEG", quality=70)
        page = doc.new_page(width=595, height=842)
        page.insert_image(page.rect, filename=str(path))
    target = folder / "scanned.pdf"
    doc.save(target)
    return target


def measure(source: Path, runs: int, ocr: tuple[str, ...] = ()) -> tuple[int, int, list[float]]:
    seconds = []
    pages = size = 0
    for run in range(runs):
        started = time.monotonic()
        result = make_safe_copy(source, source.with_name(f"{source.name}.{run}.safe.pdf"),
                                ocr=ocr)
        seconds.append(time.monotonic() - started)
        pages, size = result.pages, result.target.stat().st_size
    return pages, size, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--ocr", action="store_true", help="also time the OCR layer (ru,uk,en)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-") as tmp:
        folder = Path(tmp)
        cases = [("20-page DOCX (LibreOffice)", docx_20_pages(folder), ()),
                 ("50-page scanned PDF", scanned_pdf_50_pages(folder), ())]
        if args.ocr:
            cases.append(("50-page scanned PDF + OCR", cases[1][1], ("ru", "uk", "en")))
        for label, source, ocr in cases:
            pages, size, seconds = measure(source, args.runs, ocr)
            median = statistics.median(seconds)
            print(f"{label:28} {pages:3} pages  {median:6.2f} s  {pages / median:6.1f} pages/s"
                  f"  ({source.stat().st_size // 1024} KiB in, {size // 1024} KiB out,"
                  f" median of {args.runs})")


if __name__ == "__main__":
    main()
