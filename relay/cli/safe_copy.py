"""``tiprelay safe-copy``: PDFs of page images from hostile documents (offline machine).

Never imports the server or aiohttp; the converter runs only in the sandbox
(relay.reviewer.safe_copy).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relay.cli.common import fail


def parse_ocr(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(code.strip() for code in value.replace("+", ",").split(",") if code.strip())


@click.command("safe-copy")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the safe copies (NAME.safe.pdf each).")
@click.option("--ocr", "ocr_langs", metavar="LANGS",
              help="Add a hidden text layer with Tesseract: ru,uk,en (any of them).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=180, show_default=True,
              help="Seconds one document may take.")
@click.option("--max-pages", type=click.IntRange(1, 10000), default=1000, show_default=True,
              help="Refuse documents with more pages.")
@click.option("--check", is_flag=True,
              help="Say whether safe copies work on this machine, and what to install.")
@click.argument("inputs", metavar="IN...", nargs=-1,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def safe_copy(output: Path | None, ocr_langs: str | None, timeout: float, max_pages: int,
              check: bool, inputs: tuple[Path, ...]) -> None:
    """Turn documents into PDFs made only of page images, in a sandbox.

    PDF, DOCX, ODT, XLSX, PPTX, RTF, JPEG, PNG (and what else Dangerzone reads)
    are converted to pixels inside bubblewrap by Dangerzone's converter, then
    written as a new PDF outside it: no script, link, form, embedded file or
    font of the original survives. The originals are not changed.

    \b
    Examples:
      tiprelay safe-copy --check
      tiprelay safe-copy report.docx scan.pdf -o safe/
      tiprelay safe-copy letter.pdf -o safe/ --ocr ru,uk,en
    """
    if check:
        _check()
        return
    if not inputs:
        fail("Nothing to convert.", "Pass the documents, e.g. tiprelay safe-copy FILE -o OUT_DIR.")
    if output is None:
        fail("Safe copies need an output folder.", "Pass -o OUT_DIR.")
    from relay.reviewer.safe_copy import Limits, SafeCopyError, make_safe_copy
    from relay.reviewer.safe_copy.convert import SAFE_SUFFIX
    from relay.reviewer.safe_copy.pdf import OcrError, tesseract_languages
    from relay.reviewer.safe_copy.sandbox import SandboxUnavailableError, seccomp_available

    if not seccomp_available():
        click.echo("Warning: safe copies are made WITHOUT the sandbox's seccomp filter "
                   "(pyseccomp or libseccomp is missing): tiprelay safe-copy --check says "
                   "what to install.", err=True)  # fmt: skip
    ocr = parse_ocr(ocr_langs)
    try:
        tesseract_languages(ocr)
    except OcrError as exc:
        fail(str(exc))
    limits = Limits(timeout=timeout, max_pages=max_pages)
    output.mkdir(parents=True, exist_ok=True, mode=0o700)
    failed = 0
    for path in inputs:
        target = output / (path.name + SAFE_SUFFIX)
        try:
            result = make_safe_copy(path, target, limits=limits, ocr=ocr)
        except SandboxUnavailableError as exc:
            fail(f"Safe copies do not work on this machine: {exc}",
                 "Run tiprelay safe-copy --check.")
        except SafeCopyError as exc:
            failed += 1
            click.echo(f"NO SAFE COPY: {path}: {exc}. Open the original only with care.")
            continue
        click.echo(f"SAFE COPY: {path} -> {target} ({result.pages} page(s), "
                   f"{result.seconds:.1f} s)")
    sys.exit(1 if failed else 0)


def _check() -> None:
    from relay.reviewer.safe_copy.check import DEBIAN_PACKAGES, PIP_EXTRA, run_checks

    checks = run_checks()
    for item in checks:
        mark = "ok " if item.ok else ("NO " if item.required else "-- ")
        click.echo(f"{mark} {item.name}: {item.detail}")
    working = all(item.ok for item in checks if item.required)
    if working:
        click.echo("Safe copies work on this machine.")
        return
    click.echo("Safe copies do NOT work on this machine. Install, then run this again:")
    click.echo(f"  apt-get install --no-install-recommends {DEBIAN_PACKAGES}")
    click.echo(f"  {PIP_EXTRA}")
    sys.exit(1)
