"""How much of the no-JS forms being received the relay holds in memory at once.

Receiving takes no sealing slot (see ``submit``), so the number of forms
arriving at once is bounded only by the pace limits. What they cost is
memory, and only in proportion to what was actually sent: the message, small
attachments, and the piece not yet spooled. Every request claims its bytes
here as they arrive and gives them back when they are spooled or when the
request ends; a claim beyond ``max_receiving_memory_bytes`` is refused (503),
so many senders together cannot exhaust memory, and holding it costs them
the bandwidth to send it.
"""

from __future__ import annotations


class ReceiveMemoryFull(Exception):
    """The claim would take the relay past ``max_receiving_memory_bytes``."""


class ReceiveMemory:
    """The relay-wide count of form bytes held in memory, within a cap (one event loop)."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self.held_bytes = 0

    def claim(self, count: int) -> None:
        """Hold ``count`` more bytes; ReceiveMemoryFull (nothing held) past the cap."""
        if self.held_bytes + count > self._limit:
            raise ReceiveMemoryFull
        self.held_bytes += count

    def release(self, count: int) -> None:
        """Give back ``count`` bytes claimed before."""
        self.held_bytes -= count
