"""scripts/check-bundle-paths.mjs: a bundle that names its build folder is caught.

build-js runs the check on every file it builds. It must catch a bundle that
really embeds the folder (planted here in each form a bundle can hold it), and
must not trip over a short folder name that occurs by chance in minified code
(a clone at /app, /code or /w once failed set-up that way).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support_checkout import BUNDLE, copy_checkout
from tests.support_process import run

REPO = Path(__file__).resolve().parent.parent
NODE = Path(sys.executable).parent / "node"
CHECK = REPO / "scripts" / "check-bundle-paths.mjs"


def checkout_like(folder: Path) -> Path:
    for entry in ("node_modules", "relay", "scripts"):
        (folder / entry).mkdir(parents=True)
    return folder


def check(folder: Path, text: str, tmp_path: Path) -> tuple[int, str]:
    bundle = tmp_path / "planted.js"
    bundle.write_text(text, encoding="utf-8")
    result = run([NODE, CHECK, folder, bundle], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stderr


def escaped(text: str) -> str:
    """As esbuild's --charset=ascii writes a string: non-ASCII as \\uXXXX."""
    return "".join(c if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in text)


@pytest.mark.parametrize("name", ["app", "code", "w"])
def test_a_short_folder_name_found_by_chance_is_no_leak(tmp_path: Path, name: str) -> None:
    folder = checkout_like(tmp_path / name)
    # The folder itself, and a look-alike path that is not inside it.
    text = f'var a="{folder}",b="{folder}x/relay",c="/{name}/",d=/{name}/g;'
    status, stderr = check(folder, text, tmp_path)
    assert status == 0, stderr


@pytest.mark.parametrize(
    "form",
    ["plain", "slashes escaped", "ascii escaped"],
)
def test_a_bundle_that_embeds_its_build_folder_is_caught(tmp_path: Path, form: str) -> None:
    folder = checkout_like(tmp_path / "tip relay" / "проверка")
    path = f"{folder}/node_modules/age-encryption/dist/index.js"
    planted = {
        "plain": path,
        "slashes escaped": path.replace("/", "\\/"),
        "ascii escaped": escaped(path),
    }[form]
    status, stderr = check(folder, f"/*! {planted} */\nvar x=1;", tmp_path)
    assert status == 1
    assert "names the folder it was built in" in stderr, stderr


@pytest.mark.slow  # about 5 s: a copy of node_modules and one build
def test_build_js_refuses_a_bundle_that_embeds_its_folder_and_removes_it(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "w", node_modules=True)
    app = checkout / "relay" / "web" / "js" / "app.js"
    app.write_text(app.read_text() + f'\nglobalThis.leak = "{checkout}/relay/web";\n')
    env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ['PATH']}"}
    result = run(
        ["bash", "scripts/build-js"], cwd=checkout, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "names the folder it was built in" in result.stderr, result.stderr
    assert not (checkout / BUNDLE).exists()
