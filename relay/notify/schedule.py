"""When digests go out: fixed wall-clock times in UTC, the same every day.

The times are the operator's choice (``notify_times``), never derived from
arrivals: a digest at 08:00 goes out at 08:00 whether a hundred tips came in
the night or none, so its moment says nothing about any of them. At most
``MAX_DIGESTS_PER_DAY`` a day and at least ``MIN_HOURS_APART`` hours apart
(midnight included), so that a digest cannot be turned into a near
real-time signal of each arrival.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

MAX_DIGESTS_PER_DAY = 6
MIN_HOURS_APART = 3
_DAY_SECONDS = 24 * 3600
# [0-9], not \d: \d also matches other scripts' digits.
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class ScheduleError(ValueError):
    """The digest times break a rule; the message says which and how to fix it."""


def parse_times(values: Sequence[str]) -> tuple[str, ...]:
    """The times ("HH:MM", UTC), checked and sorted; ScheduleError says what is wrong."""
    if not values:
        raise ScheduleError('at least one time of day, such as ["08:00"]')
    if len(values) > MAX_DIGESTS_PER_DAY:
        raise ScheduleError(f"at most {MAX_DIGESTS_PER_DAY} times a day, not {len(values)}")
    minutes: list[int] = []
    for value in values:
        match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ScheduleError(f'times of day in UTC as "HH:MM" (00:00 to 23:59), not {value!r}')
        minutes.append(int(match.group(1)) * 60 + int(match.group(2)))
    minutes.sort()
    gaps = [b - a for a, b in itertools.pairwise(minutes)]
    gaps.append(minutes[0] + 24 * 60 - minutes[-1])
    if len(minutes) > 1 and min(gaps) < MIN_HOURS_APART * 60:
        raise ScheduleError(
            f"times at least {MIN_HOURS_APART} hours apart (across midnight too), "
            f"such as 08:00 and 20:00"
        )
    return tuple(f"{m // 60:02d}:{m % 60:02d}" for m in minutes)


def seconds_of_day(times: Sequence[str]) -> list[int]:
    """Each "HH:MM" as seconds since midnight UTC."""
    return sorted(int(t[:2]) * 3600 + int(t[3:5]) * 60 for t in times)


def next_digest_at(times: Sequence[str], now: float) -> float:
    """The first digest time (epoch seconds) strictly after ``now``."""
    midnight = now - now % _DAY_SECONDS
    for day in (0, 1):
        for offset in seconds_of_day(times):
            moment = midnight + day * _DAY_SECONDS + offset
            if moment > now:
                return moment
    raise AssertionError("a day always has a next digest time")  # pragma: no cover


__all__ = [
    "MAX_DIGESTS_PER_DAY",
    "MIN_HOURS_APART",
    "ScheduleError",
    "next_digest_at",
    "parse_times",
    "seconds_of_day",
]
