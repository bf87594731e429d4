"""The conversion driver: Dangerzone's document-to-pixels in the sandbox, a PDF outside.

``dangerzone-insecure-conversion`` is Dangerzone's own converter, published by
the Freedom of the Press Foundation; "insecure" means it must run in a sandbox,
and here it only ever does. It is meant to be run as a program: it reads the
document on standard input, writes it to /tmp/input_file, detects its type with
libmagic, turns office files into PDF with LibreOffice (``--headless
--safe-mode``), renders every page with PyMuPDF at 150 dpi, and writes the
pixels on standard output (relay.reviewer.safe_copy.pixels reads them). Only
its package and the two libraries it imports (PyMuPDF, python-magic) are
mounted, read-only; a small launcher (LAUNCHER) starts it. The launcher also
gives RTF, which libmagic names text/rtf and the converter's table lacks, to
LibreOffice as a word-processing file, which is what it is.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from relay.reviewer.safe_copy.pdf import OcrError, SafePdf, tesseract_languages
from relay.reviewer.safe_copy.pixels import PixelStreamCut, PixelStreamError, read_pages
from relay.reviewer.safe_copy.sandbox import (
    Limits,
    SandboxUnavailableError,
    run_sandboxed,
    sandbox_python,
)

SAFE_SUFFIX = ".safe.pdf"
SITE = "/sandbox/site"
# The converter's own imports: mounted read-only at /sandbox/site, nothing else of the venv.
CONVERTER_PACKAGES = ("dangerzone_insecure_conversion", "pymupdf", "fitz", "magic")
LAUNCHER = f"""\
import asyncio, sys
sys.path.insert(0, {SITE!r})
from dangerzone_insecure_conversion import doc_to_pixels

ALIASES = {{"text/rtf": "application/msword", "application/rtf": "application/msword"}}
detect = doc_to_pixels.DocumentToPixels.detect_mime_type

def detect_with_aliases(self, path):
    mime = detect(self, path)
    return ALIASES.get(mime, mime)

doc_to_pixels.DocumentToPixels.detect_mime_type = detect_with_aliases
sys.exit(asyncio.run(doc_to_pixels.main()))
""".encode()


class SafeCopyError(RuntimeError):
    """This document got no safe copy; the message says why, for the reviewer.

    ``log`` is the end of what the sandboxed converter wrote on standard error:
    hostile text, for a careful look only (never shown unless asked for).
    """

    def __init__(self, message: str, log: bytes = b"") -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Converter:
    """What runs inside the sandbox: a command, read-only mounts, files made from bytes."""

    command: tuple[str, ...]
    read_only: tuple[tuple[str, str], ...] = ()
    data_files: tuple[tuple[bytes, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class SafeCopyResult:
    source: Path
    target: Path
    pages: int
    seconds: float


def package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SandboxUnavailableError(
            f"the Python package {name} is missing (pip install 'tiprelay[safe-copies]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def dangerzone_converter() -> Converter:
    binds = tuple((str(package_folder(name)), f"{SITE}/{name}") for name in CONVERTER_PACKAGES)
    return Converter(
        command=(sandbox_python(), "-I", "/sandbox/launcher.py"),
        read_only=binds,
        data_files=((LAUNCHER, "/sandbox/launcher.py"),),
    )


# The converter's exit statuses (its errors module): our words for the reviewer.
_CONVERTER_ERRORS = {
    138: "its format is not one safe copies handle",
    148: "LibreOffice could not convert it (broken, or it hit the sandbox's memory "
         "or file-size limit)",
    158: "it appears to be corrupted and could not be opened",
    169: "its page count could not be read",
    170: "it has more pages than the converter's own maximum (10000)",
    172: "a page is wider than the converter allows",
    173: "a page is taller than the converter allows",
    228: "the converter failed on it (an unexpected error, or a limit of the sandbox)",
}


def _exit_reason(returncode: int, limits: Limits) -> str:
    if returncode in _CONVERTER_ERRORS:
        return _CONVERTER_ERRORS[returncode]
    if returncode in (128 + 9, -9):
        return "the converter was killed (memory or CPU limit)"
    if returncode in (128 + 24, -24):
        return f"the converter used more than {limits.cpu} s of CPU"
    return f"the converter failed (exit status {returncode})"


_FEED_CHUNK = 1 << 20


def _open_input(path: Path) -> tuple[int, threading.Thread]:
    """The read end of a pipe that a thread fills with ``path``'s bytes, and that thread.

    Never the attachment's own descriptor: inside the sandbox
    ``/proc/self/fd/0`` would reopen the original file itself, past the mount
    namespace, read-write for a reviewer who owns it (and name its host path).
    Through a pipe the converter gets the bytes and nothing else. The caller
    closes the read end once the sandbox has ended, which unblocks the thread.
    """
    source = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(source)
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        os.close(source)
        raise SafeCopyError("not a regular file with content")
    read_end, write_end = os.pipe2(os.O_CLOEXEC)

    def feed() -> None:
        try:
            while chunk := os.read(source, _FEED_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write_end, view):]
        except OSError:
            pass  # the sandbox ended before reading everything (EPIPE): nothing to do
        finally:
            os.close(source)
            os.close(write_end)

    feeder = threading.Thread(target=feed, name="safe-copy-input", daemon=True)
    feeder.start()
    return read_end, feeder


def make_safe_copy(
    source: Path,
    target: Path,
    *,
    limits: Limits | None = None,
    ocr: Sequence[str] = (),
    converter: Converter | None = None,
) -> SafeCopyResult:
    """Write ``target``, a PDF of page images of ``source``; raise SafeCopyError if not.

    SandboxUnavailableError (a machine problem, not the document's) passes through.
    """
    limits = limits or Limits()
    converter = converter or dangerzone_converter()
    languages = tesseract_languages(ocr) if ocr else None
    started = time.monotonic()
    try:
        fd, feeder = _open_input(source)
    except OSError as exc:
        raise SafeCopyError(f"cannot be read ({exc.strerror})") from None
    safe = SafePdf()
    try:
        def consume(stream: IO[bytes]) -> int:
            for page in read_pages(stream, limits):
                safe.add(page)
            return safe.pages

        try:
            result, run = run_sandboxed(
                converter.command, stdin=fd, consume=consume, limits=limits,
                read_only=converter.read_only, data_files=converter.data_files,
            )
        finally:
            os.close(fd)
            feeder.join()
        log = run.stderr_tail
        if run.timed_out:
            raise SafeCopyError(f"stopped at the time limit ({limits.timeout:g} s)", log)
        if isinstance(result, PixelStreamError) and not isinstance(result, PixelStreamCut):
            raise SafeCopyError(str(result), log)  # a bound: the sandbox was killed for it
        if run.returncode != 0:
            raise SafeCopyError(_exit_reason(run.returncode, limits), log)
        if isinstance(result, PixelStreamError):
            raise SafeCopyError(str(result), log)
        if isinstance(result, MemoryError):
            raise SafeCopyError("its pages do not fit in memory here", log)
        if isinstance(result, BaseException):
            raise result
        if languages:
            try:
                safe.add_ocr(languages, limits)
            except OcrError as exc:
                raise SafeCopyError(f"OCR failed: {exc}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        safe.save(partial)
        os.chmod(partial, 0o600)
        os.replace(partial, target)
        return SafeCopyResult(source, target, result, time.monotonic() - started)
    finally:
        with contextlib.suppress(Exception):
            safe.close()

