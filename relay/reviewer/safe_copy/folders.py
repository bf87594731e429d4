"""Safe copies of every attachment of newly decrypted tips (``decrypt --safe-copies``).

Each attachment ``<tip>/files/NAME`` gets ``<tip>/safe/NAME.safe.pdf``. A file
that gets none (a bomb, an unknown format, a limit reached) is reported on its
own line and the others go on; the originals are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from relay.reviewer.safe_copy.convert import SAFE_SUFFIX, SafeCopyError, make_safe_copy
from relay.reviewer.safe_copy.sandbox import Limits, seccomp_available

SAFE_FOLDER = "safe"


def safe_copy_lines(
    new_folders: Sequence[tuple[str, Path]],
    *,
    limits: Limits | None = None,
    ocr: Sequence[str] = (),
) -> tuple[list[str], bool]:
    """Lines for decrypt's summary, and whether every attachment got its safe copy.

    Raises SandboxUnavailableError when this machine cannot make safe copies at all.
    """
    lines: list[str] = []
    if not seccomp_available():
        lines.append(
            "WARNING: safe copies are made WITHOUT the sandbox's seccomp filter (pyseccomp "
            "or libseccomp is missing): tiprelay safe-copy --check says what to install."
        )
    all_made = True
    for label, folder in new_folders:
        files = folder / "files"
        if not files.is_dir():
            continue
        made = 0
        attachments = sorted(p for p in files.iterdir() if p.is_file() and not p.is_symlink())
        for path in attachments:
            target = folder / SAFE_FOLDER / (path.name + SAFE_SUFFIX)
            try:
                result = make_safe_copy(path, target, limits=limits, ocr=ocr)
            except SafeCopyError as exc:
                all_made = False
                lines.append(
                    f"WARNING: {label} {path.name}: NO SAFE COPY: {exc}. "
                    "Open the original only with care (see docs/reviewer.md)."
                )
                continue
            made += 1
            lines.append(
                f"SAFE COPY: {label} {path.name}: {result.pages} page(s) in "
                f"{result.seconds:.1f} s"
            )
        if attachments:
            lines.append(
                f"SAFE COPIES: {label}: {made} of {len(attachments)} attachment(s) in "
                f"{folder / SAFE_FOLDER}"
            )
    return lines, all_made
