"""Suite-wide set-up that must exist before any test runs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback

import pytest

from tests import support_fresh_debian
from tests.support_process import children_inherit_default_signals

# CPython 3.11 and 3.12 keep the AST builder's recursion depth in one
# per-interpreter counter. When the garbage collector runs a finalizer in the
# middle of an ast.parse() and that finalizer formats a traceback, the traceback
# module calls ast.parse() again for its ~~~^^^ anchors, and the outer call then
# fails with "SystemError: AST constructor recursion depth mismatch". pytest
# formats every unraisable exception (a ResourceWarning in a __del__, say) at
# once, and parses source while reporting failures, so on a machine where a test
# fails and leaks a resource the whole run ended in INTERNALERROR (seen on Debian
# 12's Python 3.11.2: pytest-dev/pytest#10763, python/cpython#106905).
# Tracebacks keep their ^^^ carets; only the extra anchors, drawn by parsing, go.
# tests/test_suite_guards.py proves it.
if sys.version_info < (3, 13) and hasattr(traceback, "_extract_caret_anchors_from_line_segment"):
    traceback._extract_caret_anchors_from_line_segment = lambda segment: None


def pytest_configure(config: pytest.Config) -> None:
    # Under nohup, or `cmd &` in a non-interactive shell, SIGINT/SIGHUP are ignored
    # and every child would inherit that (tests/support_process.py says more).
    children_inherit_default_signals()
    # The reviewer's commands keep state in ~/.config/tiprelay (the pinned team,
    # the folder decrypt last wrote to): tests, and the commands they start, get
    # a config folder of their own, never the developer's.
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="tiprelay-tests-config-")


LONG_FIRST = ("test_docker.py::test_smoke_script_builds_images_runs_relay_and_tor",)
"""Started first, so that on several workers (scripts/test) the longest test runs
beside the rest instead of after it."""
COLLECTED_LAST = ("test_fresh_debian.py::",)
"""Run last: they only collect the outcome of a check started before them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if any(name in item.nodeid for name in LONG_FIRST):
            return 0
        return 2 if any(name in item.nodeid for name in COLLECTED_LAST) else 1

    items.sort(key=rank)  # stable: the order within each rank is kept


def pytest_collection_finish(session: pytest.Session) -> None:
    # The fresh-Debian check waits mostly on downloads: it runs beside the suite.
    support_fresh_debian.start_early(session.items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    support_fresh_debian.stop()
    shutil.rmtree(os.environ["XDG_CONFIG_HOME"], ignore_errors=True)
