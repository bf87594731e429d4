"""Which unfinished uploads may keep a slot and a claim on free disk.

Creating a tus upload costs a client one request and no bytes, and sources
come over Tor, so there is no address to block. Left alone, about 40 creates
with a large ``Upload-Length`` claimed all free disk and about 1000 tiny ones
took every slot (``max_open_uploads``) for a whole ``upload_expiry_hours``.
So what an unfinished upload may hold depends on whether bytes arrive:

- **Unstarted** (no byte received yet): claims no disk, and is the first to
  go when a new upload needs a slot, oldest first. It is deleted anyway once
  ``upload_start_seconds`` pass without a byte. A real tus client sends right
  after creating, so only a flood of about ``max_open_uploads`` creates in
  that instant can push a real upload out (it then fails with 404).
- **Progressing** (a PATCH is streaming into it, or bytes arrived within
  ``upload_idle_seconds`` and, since it was created, at least
  ``upload_min_bytes_per_second`` on average): keeps its slot, and the bytes
  it still announces are reserved on disk, all progressing uploads together
  at most ``upload_disk_claim_bytes``. The average rate makes holding a slot
  cost bandwidth: a byte now and then does not keep one.
- **Paused** (started, but not progressing: the Tor circuit dropped): keeps
  its bytes and can be resumed until it expires, but when every slot is taken
  it is evicted to admit a new upload, least recently active first, after the
  unstarted ones.

Activity times live only here, in memory, on the monotonic clock: nothing
stored may carry a time of day. After a restart every upload counts as
active from the start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]
IsBusy = Callable[[str], bool]


@dataclass
class _Activity:
    length: int
    received: int
    last_active: float  # monotonic: when created (or seen at start) or when bytes last arrived
    created: float


class UploadClaims:
    """In-memory activity of the unfinished uploads, and the eviction policy over it."""

    def __init__(
        self,
        *,
        start_seconds: float,
        idle_seconds: float,
        min_bytes_per_second: float,
        disk_claim_bytes: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.start_seconds = start_seconds
        self.idle_seconds = idle_seconds
        self.min_bytes_per_second = min_bytes_per_second
        self.disk_claim_bytes = disk_claim_bytes
        self._clock = clock
        self._uploads: dict[str, _Activity] = {}

    def __len__(self) -> int:
        return len(self._uploads)

    def __contains__(self, upload_id: object) -> bool:
        return upload_id in self._uploads

    def track(self, upload_id: str, length: int, received: int) -> None:
        """A new upload (or one found in the store at start), active from now."""
        now = self._clock()
        self._uploads[upload_id] = _Activity(length, received, now, now)

    def record_progress(self, upload_id: str, received: int) -> None:
        """Bytes arrived: the upload has now ``received`` bytes."""
        activity = self._uploads.get(upload_id)
        if activity is not None and received > activity.received:
            activity.received = received
            activity.last_active = self._clock()

    def forget(self, upload_id: str) -> None:
        """The upload is gone (completed, rejected, terminated, expired, evicted)."""
        self._uploads.pop(upload_id, None)

    def keep_only(self, stored: Iterable[tuple[str, int, int]]) -> None:
        """Match the store's unfinished uploads (id, length, offset): drop the ones it no
        longer has, start tracking the ones not known here yet (as active from now)."""
        known = {upload_id: (length, offset) for upload_id, length, offset in stored}
        for upload_id in [u for u in self._uploads if u not in known]:
            del self._uploads[upload_id]
        for upload_id, (length, offset) in known.items():
            if upload_id not in self._uploads:
                self.track(upload_id, length, offset)
            else:
                self._uploads[upload_id].received = max(self._uploads[upload_id].received, offset)

    def reserved_bytes(self, is_busy: IsBusy) -> int:
        """Free disk the progressing uploads may still fill: bounded by the claim budget."""
        outstanding = sum(
            activity.length - activity.received
            for upload_id, activity in self._uploads.items()
            if self._is_progressing(upload_id, activity, is_busy)
        )
        return min(outstanding, self.disk_claim_bytes)

    def eviction_order(self, is_busy: IsBusy) -> list[str]:
        """Uploads that may give up their slot to a new one, first to go first:
        unstarted ones (oldest first), then paused ones (least recently active first)."""
        unstarted = [
            (activity.last_active, upload_id)
            for upload_id, activity in self._uploads.items()
            if activity.received == 0 and not is_busy(upload_id)
        ]
        paused = [
            (activity.last_active, upload_id)
            for upload_id, activity in self._uploads.items()
            if activity.received > 0 and not self._is_progressing(upload_id, activity, is_busy)
        ]
        return [upload_id for _, upload_id in sorted(unstarted) + sorted(paused)]

    def may_evict(self, upload_id: str, is_busy: IsBusy) -> bool:
        """Whether the upload is still unstarted or paused (it may have moved on since
        ``eviction_order`` listed it)."""
        activity = self._uploads.get(upload_id)
        if activity is None or is_busy(upload_id):
            return False
        return activity.received == 0 or not self._is_progressing(upload_id, activity, is_busy)

    def never_started(self, is_busy: IsBusy) -> list[str]:
        """Uploads that received no byte within ``start_seconds`` of their creation."""
        deadline = self._clock() - self.start_seconds
        return [
            upload_id
            for upload_id, activity in self._uploads.items()
            if activity.received == 0 and activity.created <= deadline and not is_busy(upload_id)
        ]

    def _is_progressing(self, upload_id: str, activity: _Activity, is_busy: IsBusy) -> bool:
        if is_busy(upload_id):
            return True
        now = self._clock()
        if activity.received == 0 or now - activity.last_active >= self.idle_seconds:
            return False
        return activity.received >= self.min_bytes_per_second * (now - activity.created)
