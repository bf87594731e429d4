"""Copies of this checkout, as a clone has it, for tests that build or serve from one.

``copy_checkout(dest)`` copies the files git tracks (and new ones not yet added,
so that a change can be checked before it is committed) and, when asked, the
checkout's ``node_modules`` (copied, not linked: esbuild would follow a link back
here and name this folder) so that ``scripts/build-js`` runs without ``npm ci``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support_process import run

REPO = Path(__file__).resolve().parent.parent
BUNDLE = Path("relay/web/static/dist/app.js")


def checkout_files() -> list[Path]:
    """The checkout's files, relative: tracked, and untracked ones not ignored."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [Path(name) for name in listed.split("\0") if name and (REPO / name).is_file()]


def copy_checkout(dest: Path, *, node_modules: bool = False) -> Path:
    """A copy of the checkout in ``dest`` (made if missing); returns ``dest``."""
    for relative in checkout_files():
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    if node_modules:
        shutil.copytree(REPO / "node_modules", dest / "node_modules", symlinks=True)
    return dest


def build_bundle(checkout: Path, env: dict[str, str] | None = None) -> bytes:
    """Run ``scripts/build-js`` in ``checkout``; the bundle's bytes."""
    run(["bash", "scripts/build-js"], cwd=checkout, env=env, check=True, timeout=120)
    return (checkout / BUNDLE).read_bytes()
