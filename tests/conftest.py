"""Suite-wide setup: children get default signal dispositions however pytest was started."""

from __future__ import annotations

import pytest

from tests.support_process import children_inherit_default_signals


def pytest_configure(config: pytest.Config) -> None:
    # Under nohup, or `cmd &` in a non-interactive shell, SIGINT/SIGHUP are ignored
    # and every child would inherit that (tests/support_process.py says more).
    children_inherit_default_signals()
