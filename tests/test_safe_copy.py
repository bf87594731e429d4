"""Safe copies: real bubblewrap, real Dangerzone converter, real LibreOffice, real PyMuPDF,
checked with poppler's own tools; hostile converters, bombs and hangs stay in their limits."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import time
from pathlib import Path

import pymupdf
import pytest

from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import parse_recipient
from relay.manifest import SubmissionInfo, write_manifest
from relay.reviewer.safe_copy import Limits, SafeCopyError, make_safe_copy
from relay.reviewer.safe_copy.convert import Converter
from relay.reviewer.safe_copy.pixels import PixelStreamCut, PixelStreamError, read_pages
from relay.reviewer.safe_copy.sandbox import sandbox_python
from tests import support_safe_copy as docs
from tests.support_process import run
from tests.support_reviewer import TIPRELAY

DAY = "2026-03-04"


def _poppler(tool: str, path: Path, *args: str) -> str:
    return subprocess.run([tool, *args, str(path)], capture_output=True, text=True,
                          check=True).stdout


def assert_only_page_images(path: Path, pages: int | None = None) -> None:
    """PyMuPDF and poppler agree: one image per page, nothing else."""
    doc = pymupdf.open(path)
    assert doc.page_count >= 1 and (pages is None or doc.page_count == pages)
    assert doc.embfile_count() == 0
    assert not doc.is_form_pdf
    catalog = doc.pdf_catalog()
    for key in ("OpenAction", "AA", "Names", "AcroForm", "JavaScript", "URI"):
        assert doc.xref_get_key(catalog, key)[0] == "null", key
    assert not any(doc.metadata.get(k) for k in ("author", "title", "subject", "keywords"))
    for page in doc:
        assert len(page.get_images(full=True)) == 1
        assert page.get_fonts() == []
        assert page.get_links() == []
        assert list(page.annots()) == [] and list(page.widgets()) == []
        assert page.get_text().strip() == ""
        pix = page.get_pixmap(dpi=20)
        assert len(set(pix.samples)) > 1, "a blank page"
    count = doc.page_count
    doc.close()
    info = _poppler("pdfinfo", path)
    assert f"Pages:           {count}" in info
    assert "JavaScript:      no" in info and "Form:            none" in info
    image_rows = _poppler("pdfimages", path, "-list").splitlines()[2:]
    assert len(image_rows) == count
    assert _poppler("pdffonts", path).splitlines()[2:] == []
    assert "0 embedded files" in _poppler("pdfdetach", path, "-list")


def test_pdf_office_files_and_images_become_pdfs_of_page_images_only(tmp_path: Path) -> None:
    """The one LibreOffice-heavy test: every format through the real CLI, in one run."""
    src = tmp_path / "in"
    src.mkdir()
    hostile = docs.make_hostile_pdf(src / "hostile.pdf", pages=2)
    original = pymupdf.open(hostile)  # what must not survive is really in the original
    assert original.embfile_count() == 1 and original.is_form_pdf and original[0].get_links()
    assert original[0].get_fonts() and "JavaScript" in original.xref_object(
        int(original.xref_get_key(original.pdf_catalog(), "OpenAction")[1].split()[0]))
    original.close()
    inputs = [
        hostile,
        docs.make_docx(src / "letter.docx", ["Hello DOCX", "Second"]),
        docs.make_odt(src / "note.odt", ["Hello ODT"]),
        docs.make_xlsx(src / "sheet.xlsx", [["Hello", "XLSX"], ["1", "2"]]),
        docs.make_pptx(src / "slides.pptx", ["Slide one", "Slide two"]),
        docs.make_rtf(src / "memo.rtf", ["Hello RTF"]),
        docs.make_image(src / "photo.jpg", "JPEG"),
        docs.make_image(src / "scan.png", "PNG"),
    ]
    before = {path: path.read_bytes() for path in inputs}
    out = tmp_path / "out"

    result = run([TIPRELAY, "safe-copy", *inputs, "-o", out], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    expected_pages = {"hostile.pdf": 2, "slides.pptx": 2}
    for path in inputs:
        copy = out / (path.name + ".safe.pdf")
        assert f"SAFE COPY: {path} -> {copy}" in result.stdout
        assert_only_page_images(copy, expected_pages.get(path.name, 1))
        assert copy.stat().st_mode & 0o077 == 0
        assert path.read_bytes() == before[path]


def test_ocr_adds_a_text_layer_in_our_own_font(tmp_path: Path) -> None:
    source = tmp_path / "scan.pdf"
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 200), "SAFE COPY", fontsize=48)
    page.insert_text((72, 300), "ПРИВІТ СВІТ", fontsize=48, fontname="serif",
                     fontfile="/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
    doc.save(source)

    result = make_safe_copy(source, tmp_path / "scan.safe.pdf", ocr=("en", "ru", "uk"))

    copy = pymupdf.open(result.target)
    page = copy[0]
    assert page.get_text().split() == ["SAFE", "COPY", "ПРИВІТ", "СВІТ"]
    assert len(page.get_images()) == 1
    # Only the machine's DejaVu Sans of the text layer: not the Helvetica or the
    # DejaVu Serif of the original.
    assert [font[3] for font in page.get_fonts()] == ["DejaVu Sans Book"]
    assert copy.embfile_count() == 0 and page.get_links() == []


HOSTILE_CONVERTER = r"""
import ctypes, json, os, socket, sys, time
report = {}
def attempt(name, action):
    try:
        action()
        report[name] = "succeeded"
    except OSError as exc:
        report[name] = f"{type(exc).__name__}: {exc.strerror}"
identity, outbox, port, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
attempt("read identity", lambda: open(identity).read())
attempt("list the identity's folder", lambda: os.listdir(os.path.dirname(identity)))
attempt("list /root", lambda: os.listdir("/root"))
attempt("write into the outbox", lambda: open(os.path.join(outbox, "evil"), "w").write("x"))
attempt("write into the output folder", lambda: open(os.path.join(output, "x.pdf"), "w"))
attempt("write into /usr", lambda: open("/usr/evil", "w").write("x"))
attempt("overwrite /etc/passwd", lambda: open("/etc/passwd", "w").write("x"))
report["standard input is"] = os.readlink("/proc/self/fd/0").split(":")[0]
def connect(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(address)
attempt("connect 127.0.0.1", lambda: connect(socket.AF_INET, ("127.0.0.1", port)))
attempt("connect ::1", lambda: connect(socket.AF_INET6, ("::1", port)))
attempt("netlink socket", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
libc = ctypes.CDLL(None, use_errno=True)
def unshare_user():
    if libc.unshare(0x10000000) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
attempt("new user namespace", unshare_user)
report["processes seen"] = sum(name.isdigit() for name in os.listdir("/proc"))
forks = 0
try:
    while forks < 100000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forks += 1
    report["fork"] = "unbounded"
except OSError as exc:
    report["fork"] = f"stopped after {forks}: {exc.strerror}"
report["forks"] = forks
sys.stderr.write("REPORT " + json.dumps(report) + "\n")
sys.stderr.flush()
sys.exit(3)
"""


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_hostile_converter_reaches_neither_keys_nor_network_nor_outbox(tmp_path: Path) -> None:
    home = tmp_path / "reviewer"
    (home / "outbox").mkdir(parents=True)
    identity = home / "reviewer.identity"
    identity.write_text("AGE-SECRET-KEY-1NOTAREALKEYBUTSECRET\n")
    (home / "outbox" / "reply.age").write_bytes(b"sealed reply")
    (tmp_path / "out").mkdir()  # the output folder exists, yet is not in the sandbox
    document = docs.make_image(home / "photo.png", "PNG")
    before = _tree_digest(home)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    port = listener.getsockname()[1]
    hostile = Converter(
        command=(sandbox_python(), "-I", "/sandbox/converter.py", str(identity),
                 str(home / "outbox"), str(port), str(tmp_path / "out")),
        data_files=((HOSTILE_CONVERTER.encode(), "/sandbox/converter.py"),),
    )
    started = time.monotonic()

    with pytest.raises(SafeCopyError) as caught:
        make_safe_copy(document, tmp_path / "out" / "photo.safe.pdf", converter=hostile,
                       limits=Limits(timeout=30, processes=32))

    assert time.monotonic() - started < 30
    line = next(ln for ln in caught.value.log.decode().splitlines() if ln.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert report.pop("processes seen") <= 4  # its own PID namespace: bwrap and itself
    assert report.pop("forks") < 32
    assert report.pop("fork").startswith("stopped after ")
    # Each attempt failed, and for the reason the sandbox gives.
    assert report == {
        "read identity": "FileNotFoundError: No such file or directory",
        "list the identity's folder": "FileNotFoundError: No such file or directory",
        "list /root": "FileNotFoundError: No such file or directory",
        "write into the outbox": "FileNotFoundError: No such file or directory",
        "write into the output folder": "FileNotFoundError: No such file or directory",
        "write into /usr": "OSError: Read-only file system",
        "overwrite /etc/passwd": "OSError: Read-only file system",
        "connect 127.0.0.1": "OSError: Address family not supported by protocol",
        "connect ::1": "OSError: Address family not supported by protocol",
        "netlink socket": "OSError: Address family not supported by protocol",
        "new user namespace": "PermissionError: Operation not permitted",
        # A pipe: /proc/self/fd/0 cannot reopen the attachment itself (nor name its path).
        "standard input is": "pipe",
    }
    assert "exit status 3" in str(caught.value)
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever connected
    listener.close()
    assert _tree_digest(home) == before
    assert list((tmp_path / "out").iterdir()) == []


def _timed_failure(source: Path, tmp_path: Path, limits: Limits) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(SafeCopyError) as caught:
        make_safe_copy(source, tmp_path / (source.name + ".safe.pdf"), limits=limits)
    return str(caught.value), time.monotonic() - started


def test_a_pdf_of_ten_thousand_pages_is_refused_at_its_page_count(tmp_path: Path) -> None:
    source = docs.make_many_pages_pdf(tmp_path / "many.pdf", 10_000)
    message, seconds = _timed_failure(source, tmp_path, Limits(timeout=30, max_pages=1000))
    assert message == "the document has 10000 pages; safe copies stop at 1000"
    assert seconds < 10


def test_a_page_of_100000_pixels_square_is_refused_and_so_is_one_over_our_bound(
    tmp_path: Path,
) -> None:
    limits = Limits(timeout=30, memory=2 << 30)
    source = docs.make_huge_page_pdf(tmp_path / "huge.pdf", 48_000)  # 100,000 px at 150 dpi
    message, seconds = _timed_failure(source, tmp_path, limits)
    # MuPDF refuses it itself ("Overly large image"): the converter fails, in the sandbox.
    assert message == "the converter failed on it (an unexpected error, or a limit of the sandbox)"
    assert seconds < 10
    # One MuPDF does render (10,417 pixels a side, 310 MiB) meets the reader's bound.
    source = docs.make_huge_page_pdf(tmp_path / "wide.pdf", 5_000)
    message, seconds = _timed_failure(source, tmp_path, limits)
    assert message == "page 1 is 10417 × 10417 pixels; at most 10000 × 10000"
    assert seconds < 15


def test_a_zip_bomb_inside_a_docx_ends_within_its_limits(tmp_path: Path) -> None:
    source = docs.make_zip_bomb_docx(tmp_path / "bomb.docx", 1 << 30)  # 1 MiB -> 1 GiB
    assert source.stat().st_size < 2 << 20
    message, seconds = _timed_failure(source, tmp_path, Limits(timeout=20, memory=2 << 30))
    assert "LibreOffice could not convert it" in message or "time limit" in message
    assert seconds < 25


def test_a_document_that_keeps_libreoffice_busy_is_killed_at_the_deadline(
    tmp_path: Path,
) -> None:
    source = docs.make_docx(tmp_path / "hang.docx", ["x" * 50] * 30_000, page_breaks=True)
    message, seconds = _timed_failure(source, tmp_path, Limits(timeout=6))
    assert message == "stopped at the time limit (6 s)"
    assert 6 <= seconds < 10


def _stream(*numbers: int, tail: bytes = b"") -> io.BytesIO:
    return io.BytesIO(b"".join(n.to_bytes(2, "big") for n in numbers) + tail)


def test_the_pixel_reader_believes_no_number_it_is_not_allowed_to() -> None:
    limits = Limits(max_pages=3, max_width=100, max_height=100, max_stream=100 * 100 * 3)
    good = list(read_pages(_stream(1, 2, 2, tail=b"\x01" * 12), limits))
    assert [(p.width, p.height, len(p.rgb)) for p in good] == [(2, 2, 12)]
    cases = {
        "the document has 4 pages; safe copies stop at 3": _stream(4),
        "the document has no pages": _stream(0),
        "page 1 is 101 × 2 pixels; at most 100 × 100": _stream(1, 101, 2),
        "page 1 is 0 × 2 pixels; at most 100 × 100": _stream(1, 0, 2),
        "the pages add up to more than 0 MiB of pixels":
            _stream(2, 100, 100, tail=b"\0" * 30000 + (100).to_bytes(2, "big") * 2),
        "the converter wrote more than its pages": _stream(1, 1, 1, tail=b"abcd"),
    }
    for message, stream in cases.items():
        with pytest.raises(PixelStreamError) as caught:
            list(read_pages(stream, limits))
        assert str(caught.value) == message
    with pytest.raises(PixelStreamCut):
        list(read_pages(_stream(1, 2, 2, tail=b"\x01" * 11), limits))


def _bundle(tmp_path: Path, attachments: list[tuple[str, bytes]]) -> tuple[Path, Path, str]:
    identity = tmp_path / "reviewer.identity"
    made = run([TIPRELAY, "keygen", "-o", identity, "--no-passphrase"], capture_output=True,
               text=True, check=True)
    plaintext = build_archive("see attached", attachments, day=DAY, sealed_by="browser")
    ciphertext = encrypt_bytes(plaintext, [parse_recipient(made.stdout.strip())])
    info = SubmissionInfo("c" * 32, DAY, len(ciphertext), hashlib.sha256(ciphertext).hexdigest(),
                          "browser")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / info.file_name).write_bytes(ciphertext)
    write_manifest(bundle, [info])
    return bundle, identity, info.id


def test_decrypt_safe_copies_every_attachment_and_reports_the_one_that_fails(
    tmp_path: Path,
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    bomb = docs.make_many_pages_pdf(made / "a-bomb.pdf", 10_000).read_bytes()
    photo = docs.make_image(made / "photo.png", "PNG").read_bytes()
    report = docs.make_hostile_pdf(made / "report.pdf").read_bytes()
    bundle, identity, tip = _bundle(
        tmp_path, [("a-bomb.pdf", bomb), ("photo.png", photo), ("report.pdf", report)]
    )
    out = tmp_path / "cases"

    result = run([TIPRELAY, "decrypt", "-i", identity, bundle, "-o", out, "--safe-copies"],
                 capture_output=True, text=True)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (f"WARNING: {tip} a-bomb.pdf: NO SAFE COPY: the document has 10000 pages; safe "
            "copies stop at 1000. Open the original only with care (see docs/reviewer.md)."
            in lines), lines
    assert any(line.startswith(f"SAFE COPY: {tip} photo.png: 1 page(s)") for line in lines)
    assert any(line.startswith(f"SAFE COPY: {tip} report.pdf: 2 page(s)") for line in lines)
    folder = next(out.rglob(f"{DAY}-{tip}"))
    assert f"SAFE COPIES: {tip}: 2 of 3 attachment(s) in {folder / 'safe'}" in lines
    assert sorted(p.name for p in (folder / "safe").iterdir()) == [
        "photo.png.safe.pdf", "report.pdf.safe.pdf"]
    assert_only_page_images(folder / "safe" / "report.pdf.safe.pdf", 2)
    assert (folder / "files" / "report.pdf").read_bytes() == report  # the original, as it came


def test_check_says_safe_copies_work_here(tmp_path: Path) -> None:
    result = run([TIPRELAY, "safe-copy", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("bubblewrap", "seccomp", "converter", "LibreOffice", "PDF to safe copy",
                 "office file to safe copy", "OCR (optional)"):
        assert any(line.startswith(f"ok  {name}: ") for line in lines), lines
    assert lines[-1] == "Safe copies work on this machine."


def test_check_names_what_to_install_where_bubblewrap_is_missing(tmp_path: Path) -> None:
    result = run([TIPRELAY, "safe-copy", "--check"], capture_output=True, text=True,
                 env={"PATH": str(tmp_path)})
    assert result.returncode == 1
    assert "NO  bubblewrap: bubblewrap is not installed (Debian: apt-get install bubblewrap)" \
        in result.stdout
    assert "NO  LibreOffice: missing: apt-get install --no-install-recommends " \
           "libreoffice-writer-nogui" in result.stdout
    assert "Safe copies do NOT work on this machine." in result.stdout
    assert "  apt-get install --no-install-recommends bubblewrap libmagic1" in result.stdout
