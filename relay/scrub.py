"""Cleaned copies of decrypted files for sharing, made by mat2: ``scrub_tree``.

A photo records where and on which camera it was taken; a document records who
wrote it and where. Before a reviewer shares evidence, ``scrub_tree`` writes a
cleaned copy of each file with mat2 (the Debian package, run as a subprocess):

- originals are only ever read: each one is copied into a private working
  folder under OUT, mat2 cleans that copy, and the result is moved into OUT;
- a copy lands in OUT only when mat2 succeeded and ``mat2 --show`` then finds
  nothing left in it; anything else (unsupported format, a crash, a timeout,
  leftovers, a file over the limits) is reported as NOT cleaned, with no copy;
- every mat2 run has a time limit and a memory limit, and runs in the
  run's one private folder (relay.workspace): its TMPDIR is there, and what
  it writes counts against one total limit over the whole run,
  ``max_unpacked_total``; archives (tar in any compression, zip, DOCX, ODT,
  EPUB..., nested) are measured before mat2 unpacks them (relay.unpacking),
  so a bomb costs what measuring it up to the limit costs, and is refused;
- ``SCRUBBED.json`` beside the copies lists, per file, the SHA-256 of original
  and copy, the *names* of the fields removed, and what could not be cleaned.
  It never repeats their values: it travels with the copies.

``metadata_lines`` names, per file, the kinds of identifying metadata mat2
still reads in it (place, device, people, times, notes, software, other):
bundle decrypt's summary uses it. A file the limit does not allow to unpack is
named "not inspected", with the reason; the others are still inspected.

Offline code: nothing here imports aiohttp (import-linter checks it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from relay.errors import TiprelayError
from relay.files import HASH_CHUNK_BYTES
from relay.unpacking import measure_unpacked
from relay.workspace import DEFAULT_TOTAL, Workspace, remove_stale_workspaces

SCRUBBED_NAME = "SCRUBBED.json"
SCRUBBED_FORMAT = 1
# A decrypted submission's form fields and conversation keys: never for sharing.
SUBMISSION_RECORD = "submission.json"
CLEANED = "cleaned"
NOT_CLEANED = "NOT CLEANED"

# What mat2 prints for each field, one per line under a "[+] Metadata for" header.
# Names may hold a colon themselves ("cp:lastModifiedBy: Olga"): split at ": ".
_FIELD_LINE = re.compile(r"^\s+(\S.{0,199}?):(?:\s(.*))?$")
_MAX_SHOWN_BYTES = 1 << 20  # mat2's report is cut here: a hostile file may claim a lot

# Field name patterns -> the kind of thing they give away, first match wins.
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("place", re.compile(r"gps|latitude|longitude|location|city|country|altitude", re.I)),
    ("device", re.compile(r"make|model|serial|lens|camera|device|owner ?name|imei", re.I)),
    (
        "people",
        re.compile(r"author|creator|artist|modified ?by|company|manager|copyright|"
                   r"by-line|writer|owner|user|rights|publisher|contributor", re.I),
    ),
    ("times", re.compile(r"date|time|year", re.I)),
    ("notes", re.compile(r"comment|description|title|subject|keyword|caption|headline", re.I)),
    ("software", re.compile(r"software|producer|application|generator|tool|version", re.I)),
)
# Values mat2 writes in place of what it removed (PDF dates, zip entry times).
_PLACEHOLDERS = frozenset({"", "-1", "None", "1980-01-01 00:00:00"})
# Fields that say something about the file, not about who made it.
_HARMLESS = re.compile(
    r"^(format|ExifByteOrder|Orientation|ColorSpace|ResolutionUnit|[XY]Resolution|"
    r"ImageWidth|ImageHeight|BitsPerSample|ColorComponents|YCbCr\w*|EncodingProcess|"
    r"JFIFVersion|FileType\w*|MIMEType|Warning)$",
    re.I,
)


class Mat2MissingError(TiprelayError):
    """mat2 is not installed: install the Debian package ``mat2`` (scripts/setup does)."""

    def __init__(self) -> None:
        super().__init__(
            "mat2 is not installed, so identifying metadata cannot be read or removed. "
            "Install the Debian package mat2 (sudo apt-get install mat2; scripts/setup does it)."
        )


class ScrubTargetError(TiprelayError):
    """The output folder cannot be used for cleaned copies."""


@dataclass(frozen=True)
class ScrubLimits:
    """Bounds on each file's cleaning; `tiprelay scrub --help` documents each one."""

    timeout_seconds: int = 120
    max_file_bytes: int = 1 << 30
    max_unpacked_total: int = DEFAULT_TOTAL
    """Bytes metadata inspection and cleaning may unpack and write, in total over one run."""
    max_zip_entries: int = 20_000  # archive members, over all nesting levels
    memory_bytes: int = 4 << 30


@dataclass(frozen=True)
class MetadataShown:
    """What ``mat2 --show`` read in one file: field names, or why it could not."""

    fields: tuple[str, ...] = ()
    problem: str = ""
    unpacked: int = 0
    """What mat2 unpacks it to on disk (0 for a file that is no archive)."""

    @property
    def identifying(self) -> tuple[str, ...]:
        return tuple(name for name in self.fields if not _HARMLESS.match(_bare(name)))


@dataclass(frozen=True)
class FileScrub:
    """One file's result: a cleaned copy, or why there is none."""

    path: str
    status: str
    original_sha256: str
    copy_sha256: str | None = None
    removed: tuple[str, ...] = ()
    still_present: tuple[str, ...] = ()
    problem: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "status": self.status,
            "original_sha256": self.original_sha256,
            "copy_sha256": self.copy_sha256,
            "removed": list(self.removed),
            "removed_kinds": sorted(kinds_of(self.removed)),
            "not_removed": list(self.still_present),
            "not_removed_kinds": sorted(kinds_of(self.still_present)),
            "problem": self.problem,
        }


@dataclass
class ScrubReport:
    """Every file's result; ``all_cleaned`` is False if even one is not."""

    files: list[FileScrub] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    @property
    def all_cleaned(self) -> bool:
        return all(item.status == CLEANED for item in self.files)


def find_mat2() -> str:
    """The mat2 executable's path, or Mat2MissingError."""
    path = shutil.which("mat2")
    if path is None:
        raise Mat2MissingError()
    return path


def kinds_of(field_names: tuple[str, ...] | list[str]) -> set[str]:
    """The kinds (place, device, people, times, notes, software, other) these fields give away."""
    found: set[str] = set()
    for name in field_names:
        bare = _bare(name)
        if _HARMLESS.match(bare):
            continue
        found.add(next((kind for kind, pattern in _KINDS if pattern.search(bare)), "other"))
    return found


def scrub_tree(
    source: Path,
    out_dir: Path,
    limits: ScrubLimits | None = None,
    workspace: Workspace | None = None,
) -> ScrubReport:
    """Write cleaned copies of ``source`` (a file or a folder) into ``out_dir``; see above.

    ``workspace``: the run's private folder and budget (decrypt --scrub shares
    one over every submission); without it, one is made inside ``out_dir``.
    """
    limits = limits or ScrubLimits()
    mat2 = find_mat2()
    source = source.resolve()
    out_dir = out_dir.resolve()
    if out_dir == source or out_dir.is_relative_to(source) or source.is_relative_to(out_dir):
        raise ScrubTargetError(
            f"The output folder {out_dir} and the input {source} overlap; "
            "choose an output folder outside the input."
        )
    if workspace is None:
        if out_dir.is_dir():
            remove_stale_workspaces(out_dir)  # what a crashed run left is no reason to refuse
        _check_target(out_dir)
        with Workspace(out_dir, limits.max_unpacked_total) as own:
            report = _scrub_files(mat2, source, out_dir, limits, own)
    else:
        _check_target(out_dir)
        report = _scrub_files(mat2, source, out_dir, limits, workspace)
    _write_record(out_dir, report)
    return report


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ScrubTargetError(f"{out_dir} exists and is not an empty folder; choose a new one.")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _scrub_files(
    mat2: str, source: Path, out_dir: Path, limits: ScrubLimits, workspace: Workspace
) -> ScrubReport:
    report = ScrubReport()
    for original, relative in _files(source):
        if relative == SUBMISSION_RECORD:
            report.left_out.append(relative)
            continue
        report.files.append(_scrub_one(mat2, original, relative, out_dir, workspace, limits))
    return report


def metadata_lines(
    label: str, folder: Path, limits: ScrubLimits | None = None, workspace: Workspace | None = None
) -> list[str]:
    """Per file under ``folder``, the kinds of identifying metadata it still carries.

    ``workspace``: the run's private folder and budget; without it, one is made
    inside ``folder``'s parent for this call.
    """
    try:
        mat2 = find_mat2()
    except Mat2MissingError as exc:
        return [f"NOTE: {label}: identifying metadata not checked: {exc}"]
    limits = limits or ScrubLimits()
    if workspace is None:
        with Workspace(folder.parent, limits.max_unpacked_total) as own:
            return _metadata_lines(mat2, label, folder, limits, own)
    return _metadata_lines(mat2, label, folder, limits, workspace)


def _metadata_lines(
    mat2: str, label: str, folder: Path, limits: ScrubLimits, workspace: Workspace
) -> list[str]:
    lines = []
    for path, relative in _files(folder):
        size = path.stat().st_size
        too_large = _too_large(size, limits) if size > limits.max_file_bytes else ""
        shown = (MetadataShown(problem=too_large) if too_large
                 else _show(mat2, path, limits, workspace))
        if shown.problem:
            problem = shown.problem.removeprefix("not inspected: ")
            lines.append(f"METADATA: {label} {relative}: NOT INSPECTED: {problem}; "
                         "the file is as the source sent it: open it with care")
        elif kinds := sorted(kinds_of(shown.identifying)):
            lines.append(f"METADATA: {label} {relative} carries: {', '.join(kinds)} "
                         "(tiprelay scrub makes copies without it)")
        else:
            lines.append(f"METADATA: {label} {relative}: nothing identifying found")
    return lines


def _files(source: Path) -> Iterator[tuple[Path, str]]:
    if source.is_file():
        yield source, source.name
        return
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path, path.relative_to(source).as_posix()


def _scrub_one(
    mat2: str, original: Path, relative: str, out_dir: Path, workspace: Workspace,
    limits: ScrubLimits,
) -> FileScrub:
    original_hash = _sha256(original)

    def refused(problem: str, still: tuple[str, ...] = ()) -> FileScrub:
        problem = problem.removeprefix("not inspected: ")  # NOT CLEANED says it already
        return FileScrub(relative, NOT_CLEANED, original_hash, still_present=still, problem=problem)

    size = original.stat().st_size
    if size > limits.max_file_bytes:
        return refused(_too_large(size, limits))
    if size > workspace.remaining:
        return refused(workspace.over_budget("copy"))
    slot = workspace.slot()
    try:
        # mat2 picks the parser from the extension: keep it, but nothing else of the name.
        working = slot / ("file" + original.suffix.lower()[:16])
        shutil.copyfile(original, working)
        workspace.charge(size)
        before = _show(mat2, working, limits, workspace)
        if before.problem:
            return refused(before.problem)
        # Cleaning unpacks it again, and writes a copy about its size.
        estimate = before.unpacked + size
        if estimate > workspace.remaining:
            return refused(workspace.over_budget("unpack and write"), before.identifying)
        outcome = _run_mat2(mat2, [working.name], slot, limits, workspace, estimate)
        cleaned = working.with_name(f"file.cleaned{working.suffix}")
        if outcome or not cleaned.is_file():
            return refused(outcome or "mat2 wrote no cleaned file", before.identifying)
        after = _show(mat2, cleaned, limits, workspace)
        if after.problem or after.identifying:
            problem = after.problem or "mat2 left identifying fields in its copy"
            return refused(problem, after.identifying)
        target = out_dir / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(cleaned, target)
    finally:
        shutil.rmtree(slot, ignore_errors=True)
    removed = tuple(name for name in before.identifying if name not in after.fields)
    return FileScrub(relative, CLEANED, original_hash, _sha256(target), removed=removed)


def _too_large(size: int, limits: ScrubLimits) -> str:
    return f"{size} bytes is over the limit of {limits.max_file_bytes}; not read"


def _show(mat2: str, path: Path, limits: ScrubLimits, workspace: Workspace) -> MetadataShown:
    if workspace.remaining == 0:
        return MetadataShown(problem=workspace.over_budget("unpack to"))
    measured = measure_unpacked(
        path, workspace.remaining, workspace.tmp,
        timeout_seconds=limits.timeout_seconds, max_entries=limits.max_zip_entries,
    )
    if measured.over_limit:
        return MetadataShown(problem=workspace.over_budget("unpack to"))
    if measured.problem:
        return MetadataShown(problem=f"{measured.problem}; not given to mat2")
    with workspace.output_file() as output:
        # "./": a name that starts with "-" is a file, not an option.
        problem = _run_mat2(mat2, ["--show", f"./{path.name}"], path.parent, limits, workspace,
                            measured.size, output)
        output.seek(0)
        text = output.read(_MAX_SHOWN_BYTES).decode("utf-8", "replace")
    errors = [line for line in text.splitlines() if line.startswith("[-]")]
    if problem or errors:
        return MetadataShown(problem=problem or _mat2_error(errors[0], path.name))
    names = [
        match.group(1).strip()
        for line in text.splitlines()
        if (match := _FIELD_LINE.match(line))
        and (match.group(2) or "").strip() not in _PLACEHOLDERS
    ]
    return MetadataShown(fields=tuple(dict.fromkeys(names)), unpacked=measured.size)


def _mat2_error(line: str, name: str) -> str:
    message = line.removeprefix("[-]").strip().replace(f"./{name}", "the file")
    if "not supported" in message:
        return "mat2 does not support this format; it cannot say what the file carries"
    return f"mat2 could not read it ({message or 'no reason given'})"


def _run_mat2(
    mat2: str,
    args: list[str],
    cwd: Path,
    limits: ScrubLimits,
    workspace: Workspace,
    estimate: int,
    output: IO[bytes] | None = None,
) -> str:
    """Run mat2 in ``cwd`` within the limits; '' when it succeeded, else what went wrong."""
    result = workspace.run(
        [mat2, *args], cwd, estimate=estimate, timeout_seconds=limits.timeout_seconds,
        memory_bytes=limits.memory_bytes, output=output,
    )
    if result.problem.startswith("not inspected"):
        return result.problem
    return f"mat2: {result.problem}" if result.problem else ""


def _bare(name: str) -> str:
    return name.rsplit(":", 1)[-1].strip()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _write_record(out_dir: Path, report: ScrubReport) -> None:
    record = {
        "format": SCRUBBED_FORMAT,
        "tool": "mat2",
        "all_cleaned": report.all_cleaned,
        "files": [item.as_json() for item in report.files],
        "left_out": [
            {"path": path, "why": "the submission's own record (conversation keys): never share it"}
            for path in report.left_out
        ],
    }
    temporary = out_dir / f".{SCRUBBED_NAME}.tmp"
    temporary.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(temporary, out_dir / SCRUBBED_NAME)
