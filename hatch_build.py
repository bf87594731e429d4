"""Hatchling build hook: the wheel always carries the browser bundle.

``relay/web/static/dist/app.js`` is a build product (gitignored, never
committed). When it is missing, building the wheel (``pip install .`` from a
checkout) runs ``npm ci`` and ``scripts/build-js`` to make it, and refuses to
build without it: a relay without the bundle would quietly fall back to
server-side sealing for every source.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE = Path("relay/web/static/dist/app.js")
SEAL_WORKER = Path("relay/web/static/dist/seal-worker.js")
# Loaded only on relays with OpenPGP reviewers, but every wheel carries it.
OPENPGP_WRAPPER = Path("relay/web/static/dist/openpgp-wrap.js")
BUILT = (BUNDLE, SEAL_WORKER, OPENPGP_WRAPPER)


class BrowserBundleHook(BuildHookInterface):  # type: ignore[misc]
    """Builds the JavaScript bundle if needed and ships it in the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        if not all((root / path).is_file() for path in BUILT):
            self._build_bundle(root)
        build_data["artifacts"].extend(path.as_posix() for path in BUILT)
        # The precompressed copies scripts/build-js makes (static_files.py sends them).
        build_data["artifacts"].extend(["relay/web/static/**/*.gz", "relay/web/static/**/*.br"])

    def _build_bundle(self, root: Path) -> None:
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise RuntimeError(
                f"{BUNDLE} is missing and node/npm are not on the PATH: run scripts/setup "
                "(it installs the pinned Node.js into .venv/bin) and build again with "
                ".venv/bin first on the PATH, or install Node.js 20 or newer."
            )
        if not (root / "node_modules" / ".bin" / "esbuild").exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, check=True
            )
        subprocess.run(["bash", "scripts/build-js"], cwd=root, check=True)
        for path in BUILT:
            if not (root / path).is_file():
                raise RuntimeError(f"scripts/build-js did not produce {path}")
