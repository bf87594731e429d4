"""Upload the replies of a bundle's outbox to the relay (``tiprelay push``, online).

Each ``outbox/`` entry is PUT into its slot by compare-and-swap on the hash the
slot held at the pull (signed ``PUT /api/v1/replies/slot``, the ``Reply-*``
fields and the body's Content-Digest covered by the signature). Delivered
entries move to ``sent/``. Running push again after a failure is safe: an entry
whose slot already holds exactly its ciphertext (stored before the connection
broke) counts as delivered. On a slot that changed since the pull, the entry
moves to ``conflicted/`` and push stops: pull, then reply again (the reply's n
must follow the reply that took the slot).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from relay.crypto.signing import SigningKey
from relay.errors import TiprelayError
from relay.outbox import (
    CONFLICTED_DIR,
    OUTBOX_DIR,
    SENT_DIR,
    OutboxEntry,
    entry_names,
    move_entry,
    read_outbox_entry,
)
from relay.pull import (
    RETRY_DELAYS_SECONDS,
    ReviewerClient,
    _DownloadFailed,
    _Retry,
    _with_retries,
    client_session,
)

CONFLICT_MESSAGE = (
    "The reply slot changed since your last pull (another reviewer replied, or the "
    "source deleted a reply): pull, then reply again."
)


class PushError(TiprelayError):
    """The push did not finish; what was delivered is in sent/, the rest still in outbox/."""


@dataclass
class PushReport:
    delivered: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    conflicted: list[str] = field(default_factory=list)
    """The entry whose slot changed (moved to conflicted/); push stopped there."""
    left: int = 0
    """Entries still in outbox/ after a stop."""


async def push_outbox(
    server_url: str,
    key: SigningKey,
    bundle_dir: Path,
    *,
    proxy: str | None = None,
    retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
) -> PushReport:
    """Deliver the outbox, oldest first; see the module docstring."""
    report = PushReport()
    names = entry_names(bundle_dir, OUTBOX_DIR)
    retry = _Retry(retry_delays, None)
    async with client_session(proxy) as session:
        client = ReviewerClient(session, server_url, key)
        for index, name in enumerate(names):
            entry = read_outbox_entry(bundle_dir / OUTBOX_DIR / name)

            async def put(entry: OutboxEntry = entry) -> tuple[int, bytes]:
                return await client.put_reply(
                    entry.tag, entry.expects, entry.delete_token_hash, entry.ciphertext
                )

            status, body = await _with_retries(put, retry)
            if status == 201:
                move_entry(bundle_dir, name, SENT_DIR)
                report.delivered.append(name)
                continue
            if status == 409:

                async def current(entry: OutboxEntry = entry) -> bytes | None:
                    return await client.fetch_reply(entry.tag, len(entry.ciphertext))

                try:
                    there = await _with_retries(current, retry)
                except _DownloadFailed:
                    there = None  # larger than ours, or unreadable: not ours
                if there is not None and hashlib.sha256(there).digest() == hashlib.sha256(
                    entry.ciphertext
                ).digest():
                    move_entry(bundle_dir, name, SENT_DIR)
                    report.already_there.append(name)
                    continue
                move_entry(bundle_dir, name, CONFLICTED_DIR)
                report.conflicted.append(name)
                report.left = len(names) - index - 1
                return report
            detail = body.decode("utf-8", "replace")[:300]
            report.left = len(names) - index
            raise PushError(f"The relay answered {status} to a reply: {detail}")
    return report
