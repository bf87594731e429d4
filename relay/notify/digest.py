"""The digest's text: two counts in fixed-width fields, so every digest has one length.

The same length whatever the counts, for a digest or a test digest: a channel
(or a mail server, which sees the encrypted message's size) learns nothing
from it. The relay cannot tell a follow-up from a first tip, so it counts
submissions, not sources.
"""

from __future__ import annotations

from dataclasses import dataclass

TITLE = "tiprelay digest"
"""The subject (e-mail) or title (other channels): the same for every digest."""
COUNT_WIDTH = 10
MAX_COUNT = 10**COUNT_WIDTH - 1
# Both kinds have one length, and the text neither ends in a line break nor has a line
# that ends in spaces: channels trim them (Apprise drops a final line break).
_KINDS = {False: "digest (scheduled)", True: "digest (test only)"}
_TEMPLATE = (
    "tiprelay {kind}\n"
    "Submissions waiting on the relay:  {waiting}\n"
    "Arrived since the last digest:     {arrived}\n"
    "\n"
    "Sent at fixed times, whether or not anything arrived. A follow-up to an\n"
    "earlier tip counts as a new submission. Pull to read them."
)


@dataclass(frozen=True)
class Digest:
    """What one digest says: two counts (and whether it is ``tiprelay notify-test``'s)."""

    waiting: int
    arrived: int
    test: bool = False


def _count(number: int) -> str:
    return f"{min(max(number, 0), MAX_COUNT):>{COUNT_WIDTH}}"


def render(digest: Digest) -> str:
    """The digest as text of exactly ``DIGEST_LENGTH`` characters (ASCII)."""
    text = _TEMPLATE.format(
        kind=_KINDS[digest.test],
        waiting=_count(digest.waiting),
        arrived=_count(digest.arrived),
    )
    if len(text) != DIGEST_LENGTH:  # pragma: no cover (the fields above are fixed-width)
        raise AssertionError("a digest's text must have one fixed length")
    return text


DIGEST_LENGTH = len(
    _TEMPLATE.format(kind=_KINDS[False], waiting=" " * COUNT_WIDTH, arrived=" " * COUNT_WIDTH)
)

__all__ = ["COUNT_WIDTH", "DIGEST_LENGTH", "MAX_COUNT", "TITLE", "Digest", "render"]
