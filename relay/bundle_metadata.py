"""After a bundle decrypt: what each new file gives away, and cleaned copies on request.

``metadata_summary`` is what ``tiprelay decrypt BUNDLE_DIR`` prints after its
table: per attachment of each newly decrypted submission, the kinds of
identifying metadata it still carries (place, device, people, times...), read
by mat2; with ``--scrub``, cleaned copies into ``OUT_DIR/scrubbed/<day>-<id>/``
(relay.scrub, which never changes the originals).

All of it writes in one private folder inside OUT_DIR (relay.workspace),
removed at the end, and within one total limit over the whole decrypt,
``ScrubLimits.max_unpacked_total``: an attachment it does not allow to unpack
is marked "NOT INSPECTED" (it was still decrypted as the source sent it) and
the next ones are still inspected while the limit lasts.

Offline code: nothing here imports aiohttp (import-linter checks it).
"""

from __future__ import annotations

from pathlib import Path

from relay.scrub import (
    CLEANED,
    SCRUBBED_NAME,
    Mat2MissingError,
    ScrubLimits,
    ScrubTargetError,
    find_mat2,
    metadata_lines,
    scrub_tree,
)
from relay.workspace import Workspace

SCRUBBED_FOLDER = "scrubbed"


def metadata_summary(
    new_folders: list[tuple[str, Path]],
    out_dir: Path,
    scrub: bool,
    limits: ScrubLimits | None = None,
) -> tuple[list[str], bool]:
    """Lines for the summary, and whether every file asked to be cleaned was cleaned."""
    limits = limits or ScrubLimits()
    try:
        find_mat2()
    except Mat2MissingError:
        return _summary(new_folders, out_dir, scrub, limits, None)
    with Workspace(out_dir, limits.max_unpacked_total) as workspace:
        return _summary(new_folders, out_dir, scrub, limits, workspace)


def _summary(
    new_folders: list[tuple[str, Path]],
    out_dir: Path,
    scrub: bool,
    limits: ScrubLimits,
    workspace: Workspace | None,
) -> tuple[list[str], bool]:
    lines: list[str] = []
    all_cleaned = True
    for label, folder in new_folders:
        files = folder / "files"
        if files.is_dir():
            lines.extend(metadata_lines(label, files, limits, workspace))
        if not scrub:
            continue
        target = out_dir / SCRUBBED_FOLDER / folder.name
        try:
            if workspace is None:
                raise Mat2MissingError()
            report = scrub_tree(folder, target, limits, workspace)
        except (Mat2MissingError, ScrubTargetError) as exc:
            lines.append(f"WARNING: {label} NOT CLEANED: {exc}")
            all_cleaned = False
            continue
        lines.extend(
            f"WARNING: {label} {item.path} NOT CLEANED: {item.problem}; do not share it"
            for item in report.files
            if item.status != CLEANED
        )
        cleaned = sum(item.status == CLEANED for item in report.files)
        lines.append(
            f"SCRUBBED: {label}: {cleaned} of {len(report.files)} file(s) cleaned into "
            f"{target} ({SCRUBBED_NAME} says what was removed)"
        )
        all_cleaned = all_cleaned and report.all_cleaned
    return lines, all_cleaned
