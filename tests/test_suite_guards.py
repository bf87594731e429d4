"""The suite's own guards against faults of the interpreter it runs on."""

from __future__ import annotations

import ast
import gc
import traceback


class _FormatsATracebackWhenCollected:
    """Garbage that, like a leaked transport's ResourceWarning, formats a traceback."""

    def __init__(self) -> None:
        self.cycle = self  # freed only by the cyclic collector, at any allocation

    def __del__(self) -> None:
        try:
            [1][2] + 1  # an expression the traceback module anchors with ~~~^^^
        except IndexError:
            traceback.format_exc()


def test_tracebacks_formatted_by_the_garbage_collector_do_not_break_ast_parse() -> None:
    source = "\n".join(f"a{i} = [b + c * d for b in range(3) if b]" for i in range(200))
    thresholds = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    try:
        for _ in range(20):
            for _ in range(100):
                _FormatsATracebackWhenCollected()
            # On CPython 3.11/3.12 without tests/conftest.py's guard this raises
            # SystemError: AST constructor recursion depth mismatch.
            assert isinstance(ast.parse(source), ast.Module)
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()
