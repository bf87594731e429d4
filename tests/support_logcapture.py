"""A fixture that sends relay logs (through the real allow-list) into a buffer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from relay.log import configure_logging


class CapturedLog:
    """The JSON lines written by the relay's logging while the fixture is active."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    @property
    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def captured_log() -> Iterator[CapturedLog]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    capture = CapturedLog()
    configure_logging("json", "debug", stream=capture.buffer)
    try:
        yield capture
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
