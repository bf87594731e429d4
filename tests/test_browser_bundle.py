"""The browser bundle: how it is built and what it must not contain.

``pip install .`` from a checkout must give a complete relay: the hatchling
hook (hatch_build.py) runs ``npm ci`` + ``scripts/build-js`` when the bundle is
missing and ships it in the wheel, although it is gitignored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support_node import NODE

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "relay" / "web" / "static" / "dist" / "app.js"


def test_bundle_needs_no_webassembly_eval_or_source_map() -> None:
    assert BUNDLE.is_file(), "run scripts/setup or scripts/build-js"
    text = BUNDLE.read_text()
    for forbidden in ("WebAssembly", "new Function(", "eval(", "sourceMappingURL"):
        assert forbidden not in text, forbidden
    assert "age-encryption.org/v1" in text  # typage is inside
    assert "Upload-Offset" in text  # tus-js-client is inside
    assert "BEGIN PGP" not in text  # OpenPGP.js is not: it is dist/openpgp-wrap.js


def test_the_openpgp_wrapper_carries_no_webassembly_eval_or_source_map() -> None:
    text = (BUNDLE.parent / "openpgp-wrap.js").read_text()
    # OpenPGP.js's Argon2 (WebAssembly) is left out; only an error message names it.
    for forbidden in ("WebAssembly.instantiate", "WebAssembly.Memory(", "new Function(", "eval("):
        assert forbidden not in text, forbidden
    assert "sourceMappingURL" not in text
    assert "BEGIN PGP" in text  # OpenPGP.js is inside


@pytest.mark.slow
def test_wheel_from_a_checkout_without_the_bundle_builds_and_ships_it(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = checkout / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    assert not (checkout / "relay/web/static/dist/app.js").exists()
    assert not (checkout / "node_modules").exists()
    wheels = tmp_path / "wheels"
    # The build finds npm on the PATH: the pinned Node.js that scripts/setup installs.
    path = f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(wheels)],
        cwd=checkout,
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": path},
    )
    (wheel,) = wheels.glob("tiprelay-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("relay/web/static/dist/app.js")
        wrapper = archive.read("relay/web/static/dist/openpgp-wrap.js")
    assert shipped == (checkout / "relay/web/static/dist/app.js").read_bytes()
    assert b"age-encryption.org/v1" in shipped
    # The OpenPGP wrapper too, though only relays with OpenPGP reviewers send it.
    assert wrapper == (checkout / "relay/web/static/dist/openpgp-wrap.js").read_bytes()
