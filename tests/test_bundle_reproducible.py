"""The browser bundle is reproducible: same commit, same bytes, in any folder, at any time."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

from tests.support_checkout import build_bundle, copy_checkout

NODE_BIN = str(Path(sys.executable).parent)


def _build_env(source_date_epoch: int, timezone: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = NODE_BIN + os.pathsep + env.get("PATH", "")
    env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    env["TZ"] = timezone
    return env


@pytest.mark.slow  # about 5 s: two copies of node_modules and two builds
def test_two_builds_in_different_folders_at_different_times_are_identical(
    tmp_path: Path,
) -> None:
    first_checkout = copy_checkout(tmp_path / "first", node_modules=True)
    # A folder as unlike the first as a clone can be: spaces, Cyrillic letters,
    # 200 characters in all.
    second_folder = tmp_path / "tip relay" / "проверка сборки"
    while len(str(second_folder)) < 200:  # at most 255 bytes a name
        second_folder /= "д" * min(40, 200 - len(str(second_folder)) - 1)
    assert len(str(second_folder)) == 200
    second_checkout = copy_checkout(second_folder, node_modules=True)

    first = build_bundle(first_checkout, _build_env(1_000_000_000, "UTC"))
    time.sleep(1.1)  # a different second on the clock, for anything that would read it
    second = build_bundle(second_checkout, _build_env(1_700_000_000, "Asia/Tokyo"))

    assert len(first) > 10_000
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert first == second
    for checkout in (first_checkout, second_checkout, tmp_path):
        for form in (str(checkout), _ascii_escaped(str(checkout))):
            assert form.encode() not in first, "the bundle names the folder it was built in"
    # Every built file, the sealing worker and the OpenPGP wrapper too, is the
    # same in both folders.
    first_built = built_files(first_checkout)
    assert "seal-worker.js" in first_built
    assert "openpgp-wrap.js" in first_built
    assert first_built == built_files(second_checkout)


def _ascii_escaped(text: str) -> str:
    """As esbuild's --charset=ascii writes a string: non-ASCII as \\uXXXX."""
    return "".join(c if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in text)


def built_files(checkout: Path) -> dict[str, bytes]:
    dist = checkout / "relay" / "web" / "static" / "dist"
    return {path.relative_to(dist).as_posix(): path.read_bytes() for path in dist.rglob("*")}
