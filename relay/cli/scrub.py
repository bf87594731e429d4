"""``tiprelay scrub IN -o OUT``: cleaned copies of decrypted files, for sharing.

Offline command: nothing here may import aiohttp (import-linter checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relay.cli.common import no_core_dumps, user_errors
from relay.scrub import CLEANED, SCRUBBED_NAME, ScrubLimits, ScrubReport, kinds_of, scrub_tree

_DEFAULTS = ScrubLimits()


def scrub_summary_lines(report: ScrubReport, out_dir: Path) -> list[str]:
    """One line per file; files that are not clean are shouted, never hidden."""
    lines = []
    for item in report.files:
        if item.status == CLEANED:
            kinds = ", ".join(sorted(kinds_of(item.removed))) or "nothing identifying found"
            lines.append(f"cleaned      {item.path}  (removed: {kinds})")
        else:
            still = ", ".join(sorted(kinds_of(item.still_present)))
            carries = f"; it still carries: {still}" if still else ""
            lines.append(
                f"NOT CLEANED  {item.path}: {item.problem}{carries}. No copy was written: "
                "do not share the original."
            )
    lines.extend(f"left out    {path}: the submission's own record; never share it"
                 for path in report.left_out)
    cleaned = sum(item.status == CLEANED for item in report.files)
    lines.append(
        f"{cleaned} of {len(report.files)} file(s) cleaned into {out_dir}; "
        f"details in {out_dir / SCRUBBED_NAME}."
    )
    return lines


@click.command()
@click.argument("input_path", metavar="IN", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="New (or empty) folder for the cleaned copies and SCRUBBED.json.")
@click.option("--timeout", "timeout_seconds", type=click.IntRange(1, 3600),
              default=_DEFAULTS.timeout_seconds, show_default=True,
              help="Seconds mat2 may spend on one file.")
@click.option("--max-file-size", "max_file_bytes", type=click.IntRange(1),
              default=_DEFAULTS.max_file_bytes, show_default=True,
              help="Bytes; larger files are not cleaned.")
@click.option("--max-unpacked-total", "--max-unpacked-size", "max_unpacked_total",
              type=click.IntRange(1), default=_DEFAULTS.max_unpacked_total, show_default=True,
              help="Bytes the whole run may unpack and write while cleaning (archives "
                   "measured before mat2 unpacks them, nested ones too; copies; what mat2 "
                   "writes). A file that would go over it is NOT CLEANED; the others still are.")
def scrub(input_path: Path, out_dir: Path, timeout_seconds: int, max_file_bytes: int,
          max_unpacked_total: int) -> None:
    """Write copies without identifying metadata (GPS, camera, author...) using mat2.

    IN is a file or a folder (e.g. a decrypted submission). Originals are never
    changed. A file mat2 cannot clean gets no copy and is listed as NOT CLEANED;
    the exit status is then 1.

    \b
    Example:
      tiprelay scrub OUT_DIR/2026-05-01-abcd... -o to-share/
    """
    no_core_dumps()  # plaintext passes through this process
    limits = ScrubLimits(
        timeout_seconds=timeout_seconds,
        max_file_bytes=max_file_bytes,
        max_unpacked_total=max_unpacked_total,
    )
    with user_errors():
        report = scrub_tree(input_path, out_dir, limits)
    for line in scrub_summary_lines(report, out_dir):
        click.echo(line)
    sys.exit(0 if report.all_cleaned else 1)
