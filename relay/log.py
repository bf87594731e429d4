"""Logging that cannot carry a source's data: structlog with an allow-list.

Every log line, from our code (structlog) or from libraries (stdlib
``logging``, e.g. aiohttp), passes one filter: only the fields named in
``ALLOWED_FIELDS`` survive, and only with values of the expected shape (an
event name, a route *name*, an HTTP status, a bucketed size...). Anything else
is dropped silently. Library messages keep only their logger name and level,
never their text, because that text may quote request data. Exceptions keep
only their type and the code location, never their message. No timestamps:
the relay logs no time of day (Docker's own log timestamps are the
operator's choice).

aiohttp's access log is switched off here and should also be disabled where
the server starts (``access_log=None``).
"""

from __future__ import annotations

import logging
import re
import sys
import types
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog

LOG_LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDACTED_EVENT = "event_not_loggable"
LIBRARY_EVENT = "library_message"

_DURATION_LIMITS: tuple[tuple[float, str], ...] = (
    (0.1, "<0.1s"),
    (1.0, "<1s"),
    (10.0, "<10s"),
    (60.0, "<1min"),
    (600.0, "<10min"),
)
DURATION_BUCKETS = frozenset([label for _, label in _DURATION_LIMITS] + [">=10min"])
_SIZE_LIMITS: tuple[tuple[int, str], ...] = (
    (64 << 10, "<64KiB"),
    (1 << 20, "<1MiB"),
    (16 << 20, "<16MiB"),
    (256 << 20, "<256MiB"),
)
SIZE_BUCKETS = frozenset([label for _, label in _SIZE_LIMITS] + [">=256MiB"])
_COUNT_LIMITS: tuple[tuple[int, str], ...] = (
    (1, "none"),
    (10, "under 10"),
    (100, "10 to 99"),
    (1000, "over 100"),
)
COUNT_BUCKETS = frozenset([label for _, label in _COUNT_LIMITS] + ["over 1000"])


def duration_bucket(seconds: float) -> str:
    """A coarse duration label: exact timings could help correlate a source's traffic."""
    for limit, label in _DURATION_LIMITS:
        if seconds < limit:
            return label
    return ">=10min"


def size_bucket(size: int) -> str:
    """A coarse size label: exact sizes could fingerprint a submission."""
    for limit, label in _SIZE_LIMITS:
        if size < limit:
            return label
    return ">=256MiB"


def count_bucket(count: int) -> str:
    """A coarse count label, for counts of source requests (relay.server.codenames)."""
    for limit, label in _COUNT_LIMITS:
        if count < limit:
            return label
    return "over 1000"


_Sanitizer = Callable[[object], object | None]


def _matching(pattern: str) -> _Sanitizer:
    compiled = re.compile(pattern)

    def sanitize(value: object) -> object | None:
        return value if isinstance(value, str) and compiled.fullmatch(value) else None

    return sanitize


def _int_between(low: int, high: int) -> _Sanitizer:
    def sanitize(value: object) -> object | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return value if ok else None

    return sanitize


def _bucketed(buckets: frozenset[str], bucket: Callable[[Any], str]) -> _Sanitizer:
    def sanitize(value: object) -> object | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float) and value >= 0:
            return bucket(value)
        return value if value in buckets else None

    return sanitize


def _event(value: object) -> object:
    # Event names are constants in code; free text could quote request data.
    if isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9_.]{0,79}", value):
        return value
    return REDACTED_EVENT


def _method(value: object) -> object:
    return value if value in HTTP_METHODS else "OTHER"


_HEX_ID = r"[0-9a-f]{32}"
_FIELD_SANITIZERS: dict[str, _Sanitizer] = {
    "event": _event,
    "level": lambda v: v if v in LOG_LEVELS else None,
    "logger": _matching(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}"),
    "component": _matching(r"[a-z][a-z0-9_.-]{0,63}"),
    "method": _method,
    # A route's *name* (request.match_info.route.name), never a path: paths
    # carry ids, and a query string may carry anything.
    "route": _matching(r"[a-z][a-z0-9_.-]{0,63}"),
    "status": _int_between(100, 599),
    "duration_bucket": _bucketed(DURATION_BUCKETS, duration_bucket),
    "size_bucket": _bucketed(SIZE_BUCKETS, size_bucket),
    "error_type": _matching(r"[A-Za-z_][A-Za-z0-9_.]{0,127}"),
    "error_at": _matching(r"[A-Za-z_][A-Za-z0-9_.]{0,127}:[0-9]{1,6}"),
    "submission_id": _matching(_HEX_ID),
    "upload_id": _matching(_HEX_ID),
    "reviewer": _matching(r"[a-z0-9_-]{1,64}"),
    # A reviewer's OpenPGP key (public, and published on the form's page).
    "fingerprint": _matching(r"[0-9A-F]{40}"),
    "days_left": _int_between(0, 10_000),
    # Codes chosen in our code (never free text): why a request was refused, ...
    "reason": _matching(r"[a-z][a-z0-9_]{0,39}"),
    "sealed_by": lambda v: v if v in ("server", "browser") else None,
    "count": _int_between(0, 2**62),
    # The team's digest (relay.notify): a channel's kind is its URL's scheme, never the URL.
    "channel_kind": _matching(r"[a-z][a-z0-9+.-]{0,31}"),
    "channels": _int_between(0, 10_000),
    "sent": _int_between(0, 10_000),
    "failed": _int_between(0, 10_000),
    "attempt": _int_between(0, 100),
    # A UTC day, for the daily activity totals (relay.activity); never a time.
    "day": _matching(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    "reviewers": _int_between(0, 10_000),
    # Derivation pressure over the last report period (relay.server.codenames):
    # coarse counts only, never a request's time.
    "refused_bucket": _bucketed(COUNT_BUCKETS, count_bucket),
    "dropped_bucket": _bucketed(COUNT_BUCKETS, count_bucket),
    "minutes": _int_between(1, 24 * 60),
    "port": _int_between(1, 65535),
    "signal": _matching(r"SIG[A-Z0-9]{1,10}"),
    "version": _matching(r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}"),
}
ALLOWED_FIELDS = frozenset(_FIELD_SANITIZERS)


def _exception_fields(exc_info: object) -> dict[str, str]:
    """Only an exception's type and where it was raised: its message may quote input."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return {}
    fields = {"error_type": exc_info[0].__name__}
    tb = exc_info[2]
    if isinstance(tb, types.TracebackType):
        while tb.tb_next is not None:
            tb = tb.tb_next
        module = tb.tb_frame.f_globals.get("__name__", "unknown")
        fields["error_at"] = f"{module}:{tb.tb_lineno}"
    return fields


def _exceptions_to_types(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    for key in ("exc_info", "exception"):
        if key in event_dict:
            for name, value in _exception_fields(event_dict.pop(key)).items():
                event_dict.setdefault(name, value)
    return event_dict


def filter_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """The allow-list: keep known fields with well-shaped values, drop everything else."""
    kept: dict[str, Any] = {}
    for key, value in event_dict.items():
        sanitizer = _FIELD_SANITIZERS.get(key)
        if sanitizer is None:
            continue
        clean = sanitizer(value)
        if clean is not None:
            kept[key] = clean
    kept.setdefault("event", REDACTED_EVENT)
    return kept


def _from_library(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """A stdlib record keeps its logger, level and exception type; never its text."""
    record = event_dict.get("_record")
    if not isinstance(record, logging.LogRecord):
        return {"event": LIBRARY_EVENT}
    fields: dict[str, Any] = {
        "event": LIBRARY_EVENT,
        "logger": record.name,
        "level": record.levelname.lower(),
    }
    fields.update(_exception_fields(record.exc_info))
    return fields


_SHARED_CHAIN: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    _exceptions_to_types,
    filter_fields,
]
_structlog_configured = False


def _configure_structlog() -> None:
    # The filter runs here too, so an event is already clean if it reaches a
    # handler we did not install (e.g. logging's last-resort handler).
    global _structlog_configured
    if _structlog_configured:
        return
    structlog.configure(
        processors=[*_SHARED_CHAIN, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _structlog_configured = True


class _AllowListHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed."""


def make_formatter(format: str, *, colors: bool = False) -> logging.Formatter:
    """A formatter that filters every record and renders it as JSON or console text."""
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    elif format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    else:
        raise ValueError(f"log format must be 'json' or 'console', not {format!r}")
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_from_library],
        processors=[_exceptions_to_types, filter_fields, renderer],
        use_get_message=False,
        pass_foreign_args=False,
    )


def configure_logging(format: str, level: str, *, stream: TextIO | None = None) -> None:
    """Send every log record (ours and libraries') through the allow-list to ``stream``.

    ``format`` is "json" or "console"; ``level`` one of LOG_LEVELS. The stream
    defaults to standard error. Replaces any handlers on the root logger.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    _configure_structlog()
    output = stream if stream is not None else sys.stderr
    handler = _AllowListHandler(output)
    handler.setFormatter(make_formatter(format, colors=format == "console" and output.isatty()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[level])
    # A logging failure must not print the record (its arguments) to stderr.
    logging.raiseExceptions = False
    disable_access_log()


def disable_access_log() -> None:
    """Silence aiohttp's access log: it would record addresses, paths and user agents."""
    access = logging.getLogger("aiohttp.access")
    access.disabled = True
    access.propagate = False
    access.handlers.clear()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger whose events pass the allow-list (``structlog.stdlib.BoundLogger``)."""
    _configure_structlog()
    return structlog.stdlib.get_logger(name)
