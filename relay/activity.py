"""Source activity as daily totals, never as one log line per submission.

A log line per tip would carry the time of that tip: our lines have no
timestamps, but Docker's and journald's log drivers stamp every line they
store. So each submission, refusal or upload event only increments a counter
here (and is logged at debug level, off by default, for troubleshooting);
a timer reports finished days as totals, which reveal no more than the day
the store already keeps. Nothing here is ever written to disk.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from relay.log import get_logger

_log = get_logger("relay.activity")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class ActivityTally:
    """Counts of named events per UTC day, reported once the day is over."""

    def __init__(self, today: Callable[[], str] = _today) -> None:
        self._today = today
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def count(self, event: str) -> None:
        """One more ``event`` today (thread-safe; logs nothing above debug)."""
        with self._lock:
            self._counts[(self._today(), event)] += 1
        _log.debug(event)

    def report_finished_days(self) -> None:
        """Log the totals of every day before today, then forget them."""
        today = self._today()
        self._report(lambda day: day < today)

    def report_all(self) -> None:
        """Log every total, today's included (at shutdown)."""
        self._report(lambda day: True)

    def _report(self, due: Callable[[str], bool]) -> None:
        with self._lock:
            ready = sorted(key for key in self._counts if due(key[0]))
            totals = [(day, event, self._counts.pop((day, event))) for day, event in ready]
        for day, event, count in totals:
            _log.info("activity.daily", day=day, reason=event, count=count)


activity = ActivityTally()
"""The process's tally: call ``activity.count("submission_stored")``."""
