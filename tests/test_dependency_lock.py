"""The Python dependency locks (requirements/*.txt, made by scripts/lock).

Set-up installs exactly requirements/dev.txt, every file checked against its
hashes; the Docker image installs exactly requirements/runtime.txt. These tests
check that the venv running them is the lock, that the locks agree with
pyproject.toml, and that a hash that does not match stops an install with a
message naming the lock and the command that refreshes it.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support_process import run

REPO = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = REPO / "requirements" / "runtime.txt"
BUILD_LOCK = REPO / "requirements" / "build.txt"
DEV_LOCK = REPO / "requirements" / "dev.txt"
NOT_IN_THE_LOCK = {"tiprelay", "setuptools"}
"""tiprelay is installed on top of the lock (--no-deps); setuptools comes with
Python 3.11's venv module and nothing uses it."""

SMALL_LOCKED_PACKAGE = "mdurl"
"""A few kilobytes, pure Python, no dependencies: quick to download for the hash tests."""

_ENTRY = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    text: str
    """The entry as it stands in the lock (its requirement line and hash lines)."""

    def applies_here(self) -> bool:
        return self.marker is None or Marker(self.marker).evaluate()


def read_lock(path: Path) -> dict[str, LockedPackage]:
    """Every entry of a lock file, by canonical name."""
    entries: dict[str, LockedPackage] = {}
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = _ENTRY.match(lines[index])
        index += 1
        if match is None:
            continue
        block = [lines[index - 1]]
        while block[-1].endswith("\\") and index < len(lines):
            block.append(lines[index])
            index += 1
        name = canonicalize_name(match.group(1))
        entries[name] = LockedPackage(
            name=name,
            version=match.group(2),
            marker=match.group(3),
            hashes=tuple(_HASH.findall("\n".join(block))),
            text="\n".join(block) + "\n",
        )
    return entries


def installed_distributions() -> dict[str, str]:
    """Name -> version of every distribution the interpreter running the tests has."""
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }


def test_every_locked_entry_is_pinned_and_hashed() -> None:
    for lock in (RUNTIME_LOCK, BUILD_LOCK, DEV_LOCK):
        entries = read_lock(lock)
        pinned_lines = [line for line in lock.read_text().splitlines() if "==" in line]
        assert len(entries) == len(pinned_lines), f"{lock.name}: an entry was not parsed"
        assert entries, f"{lock.name} is empty"
        for entry in entries.values():
            assert entry.hashes, f"{lock.name}: {entry.name} has no hash"


def test_the_venv_has_exactly_the_locked_versions() -> None:
    locked = {name: entry for name, entry in read_lock(DEV_LOCK).items() if entry.applies_here()}
    installed = installed_distributions()
    missing = sorted(set(locked) - set(installed))
    wrong = sorted(
        f"{name} {installed[name]} (locked: {entry.version})"
        for name, entry in locked.items()
        if name in installed and installed[name] != entry.version
    )
    unlocked = sorted(set(installed) - set(locked) - NOT_IN_THE_LOCK)
    hint = "; run scripts/setup (it installs requirements/dev.txt)"
    assert not missing, f"locked but not installed: {missing}{hint}"
    assert not wrong, f"not the locked version: {wrong}{hint}"
    assert not unlocked, f"installed but not in the lock: {unlocked}"
    assert (
        installed["tiprelay"]
        == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    )


def test_the_locks_agree_with_pyproject_and_with_each_other() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    runtime, build, dev = read_lock(RUNTIME_LOCK), read_lock(BUILD_LOCK), read_lock(DEV_LOCK)
    wanted = {
        RUNTIME_LOCK: (runtime, pyproject["project"]["dependencies"]),
        BUILD_LOCK: (build, pyproject["build-system"]["requires"]),
        DEV_LOCK: (dev, pyproject["project"]["optional-dependencies"]["dev"]),
    }
    for lock, (entries, requirements) in wanted.items():
        for text in requirements:
            requirement = Requirement(text)
            entry = entries.get(canonicalize_name(requirement.name))
            assert entry is not None, f"{lock.name} does not lock {text}: run scripts/lock"
            assert requirement.specifier.contains(entry.version, prereleases=True), (
                f"{lock.name} locks {entry.name}=={entry.version}, outside {text}: run scripts/lock"
            )
    # The dev lock holds the runtime and build locks, at the same versions and hashes.
    for entries in (runtime, build):
        for name, entry in entries.items():
            assert dev[name].version == entry.version, f"{name}: dev and other lock differ"
            assert set(entry.hashes) <= set(dev[name].hashes), f"{name}: hashes differ"


def _download_entry(entry_text: str, tmp_path: Path) -> tuple[int, str]:
    """``pip download --require-hashes`` of one lock entry; (exit status, output)."""
    requirements = tmp_path / "one-entry.txt"
    requirements.write_text(entry_text)
    download_dir = tmp_path / "downloaded"
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--require-hashes",
            "--no-deps",
            "--dest",
            download_dir,
            "-r",
            requirements,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(download_dir, ignore_errors=True)
    return result.returncode, result.stdout + result.stderr


def _tampered(entry: LockedPackage) -> str:
    """The entry with the first hex digit of every hash changed."""
    text = entry.text
    for digest in entry.hashes:
        changed = ("1" if digest[0] == "0" else "0") + digest[1:]
        text = text.replace(digest, changed)
    return text


def test_a_tampered_hash_is_refused(tmp_path: Path) -> None:
    entry = read_lock(DEV_LOCK)[SMALL_LOCKED_PACKAGE]
    status, output = _download_entry(entry.text, tmp_path)
    assert status == 0, f"the untouched entry must download:\n{output}"
    status, output = _download_entry(_tampered(entry), tmp_path)
    assert status != 0
    assert "DO NOT MATCH THE HASHES" in output, output
    assert SMALL_LOCKED_PACKAGE in output


@pytest.mark.slow
def test_set_up_stops_at_a_tampered_hash_and_says_how_to_refresh(tmp_path: Path) -> None:
    """scripts/install-locked (what set-up runs first) in a copy with a tampered lock."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "requirements").mkdir()
    shutil.copy2(REPO / "scripts" / "install-locked", checkout / "scripts")
    entry = read_lock(DEV_LOCK)[SMALL_LOCKED_PACKAGE]
    (checkout / "requirements" / "dev.txt").write_text(
        DEV_LOCK.read_text().replace(entry.text, _tampered(entry))
    )
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    result = run(
        ["bash", checkout / "scripts" / "install-locked", venv, SMALL_LOCKED_PACKAGE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr, result.stderr
    assert "requirements/dev.txt" in result.stderr
    assert "scripts/lock" in result.stderr
    assert not list((venv / "lib").glob(f"python*/site-packages/{SMALL_LOCKED_PACKAGE}"))
