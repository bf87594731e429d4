"""Parsing a JSON body an anonymous client sent: bounded in nesting before parsing.

Python's ``json`` parser recurses once per ``[`` or ``{``: about a thousand of
them, which fit in a 1 KiB body, raise ``RecursionError`` instead of a
``ValueError``. Every JSON body the relay reads from a client (the source's
reply API: ``{"tags": [...]}``, ``{"tag": ...}``, ``{"tag": ..., "token": ...}``)
is at most two levels deep, so the body is decoded as UTF-8 and its nesting
measured, outside strings, before ``json.loads`` sees it. Anything deeper, not
UTF-8 or not JSON raises :class:`JSONBodyError`, which the handler answers with
a 400.
"""

from __future__ import annotations

import json

MAX_JSON_DEPTH = 4
"""Nesting allowed in a client's JSON body: the deepest real one has two levels."""

_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")


class JSONBodyError(ValueError):
    """The body is not JSON the relay reads: not UTF-8, too deeply nested, or malformed."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets inside strings
    not counted (a linear scan; unbalanced input is measured as far as it goes)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
    return deepest


def parse_json_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> object:
    """The JSON value of ``body``; JSONBodyError unless it is UTF-8 JSON nested at
    most ``max_depth`` levels."""
    try:
        text = body.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259, 8.1)
    except UnicodeDecodeError:
        raise JSONBodyError("not UTF-8") from None
    # Decoding first matters: json.loads also reads UTF-16 and UTF-32 bytes,
    # whose code units can hide a quote or a bracket from a scan of the bytes.
    if sum(text.count(opener) for opener in _OPENERS) > max_depth and (
        nesting_depth(text) > max_depth
    ):
        raise JSONBodyError("nested too deeply")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError cannot happen past the scan
        raise JSONBodyError("not JSON") from None


__all__ = ["MAX_JSON_DEPTH", "JSONBodyError", "nesting_depth", "parse_json_body"]
