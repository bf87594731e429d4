"""``tiprelay safe-copy --check``: can this machine make safe copies, and what is missing.

Each piece is tried for real: bubblewrap starts a sandbox, the converter turns
a small PDF (made here) into pixels in it, and LibreOffice a small RTF; PyMuPDF
builds the copy. Optional pieces (seccomp, Tesseract and its languages) are
reported too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.reviewer.safe_copy.convert import SafeCopyError, make_safe_copy
from relay.reviewer.safe_copy.pdf import installed_ocr_languages
from relay.reviewer.safe_copy.sandbox import (
    Limits,
    SandboxUnavailableError,
    run_sandboxed,
    seccomp_filter_fd,
)

OFFICE = "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
DEBIAN_PACKAGES = f"bubblewrap libmagic1 fonts-dejavu-core {OFFICE}"
OCR_PACKAGES = "tesseract-ocr tesseract-ocr-rus tesseract-ocr-ukr tesseract-ocr-eng"
PIP_EXTRA = "pip install 'tiprelay[safe-copies]'"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _sandbox() -> Check:
    try:
        with open(os.devnull, "rb") as null:
            result, run = run_sandboxed(
                ["/bin/sh", "-c", "echo sandboxed"], stdin=null,
                consume=lambda out: out.read(100), limits=Limits(timeout=30),
            )
    except SandboxUnavailableError as exc:
        return Check("bubblewrap", False, f"{exc}; Debian: apt-get install bubblewrap")
    if result != b"sandboxed\n" or run.returncode != 0:
        tail = run.stderr_tail.decode(errors="replace").strip()[-200:]
        return Check("bubblewrap", False,
                     f"the sandbox does not start ({tail or run.returncode}); unprivileged "
                     "user namespaces must be allowed (sysctl kernel.unprivileged_userns_clone=1)")
    return Check("bubblewrap", True, "a sandbox starts (user, PID, IPC, network namespaces)")


def _convert(name: str, source: Path, folder: Path) -> Check:
    try:
        result = make_safe_copy(source, folder / (source.name + ".safe.pdf"),
                                limits=Limits(timeout=120))
    except SandboxUnavailableError as exc:
        return Check(name, False, str(exc))
    except SafeCopyError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, f"{result.pages} page(s) in {result.seconds:.1f} s")


def run_checks() -> list[Check]:
    checks = [_sandbox()]
    seccomp = seccomp_filter_fd()
    if seccomp is not None:
        os.close(seccomp)
    checks.append(Check("seccomp", seccomp is not None,
                        "filter compiled (pyseccomp, libseccomp2)" if seccomp is not None
                        else f"pyseccomp or libseccomp2 missing ({PIP_EXTRA})", required=False))
    missing = [n for n in ("dangerzone_insecure_conversion", "pymupdf", "magic")
               if importlib.util.find_spec(n) is None]
    checks.append(Check("converter", not missing,
                        "dangerzone-insecure-conversion, PyMuPDF, python-magic"
                        if not missing else f"missing {', '.join(missing)}: {PIP_EXTRA}"))
    office = shutil.which("libreoffice")
    checks.append(Check("LibreOffice", office is not None,
                        office or f"missing: apt-get install --no-install-recommends {OFFICE}"))
    if checks[0].ok and not missing:
        pymupdf: Any = importlib.import_module("pymupdf")
        with tempfile.TemporaryDirectory(prefix="tiprelay-check-") as tmp:
            folder = Path(tmp)
            pdf = folder / "check.pdf"
            doc = pymupdf.open()
            doc.new_page().insert_text((72, 72), "tiprelay safe-copy check")
            doc.save(pdf)
            checks.append(_convert("PDF to safe copy", pdf, folder))
            if office is not None:
                rtf = folder / "check.rtf"
                rtf.write_text("{\\rtf1\\ansi tiprelay safe-copy check\\par}")
                checks.append(_convert("office file to safe copy", rtf, folder))
    languages = installed_ocr_languages()
    wanted = {"rus", "ukr", "eng"}
    has_ocr = shutil.which("tesseract") is not None and wanted <= languages
    checks.append(Check("OCR (optional)", has_ocr,
                        "Tesseract with rus, ukr, eng" if has_ocr
                        else f"for --ocr: apt-get install {OCR_PACKAGES}", required=False))
    return checks
