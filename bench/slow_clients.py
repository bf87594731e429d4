"""No-JS submissions accepted while 40 slow connections are open.

    .venv/bin/python bench/slow_clients.py [REAL]     # REAL forms, default 5

Starts a real ``tiprelay serve`` on 127.0.0.1 with the small pace limits of
tests/test_slow_clients.py (only those the relay knows, so it also runs on a
relay without them), opens 30 connections that send a form's start and then a
byte a second and 10 that send only their headers, then sends REAL ordinary
forms at once and prints how many were stored and decrypt, and how the slow
connections ended. No slow connection lives longer than 15 s.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.config import SETTINGS
from tests.support_server import running_relay
from tests.test_slow_clients import (
    PACE_SETTINGS,
    stored_messages,
    storm_and_submit,
)


def main(real: int) -> None:
    settings = {key: value for key, value in PACE_SETTINGS.items() if key in SETTINGS}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_relay(Path(tmp) / "relay", settings) as relay,
    ):
        answers, still_open, outcomes = asyncio.run(storm_and_submit(relay.port, 30, 10, real))
        stored = [message for message in stored_messages(relay) if message.startswith("real tip")]
    print(f"settings: {settings}")
    print(
        f"real forms: {real}; answered 303: {sum(a.status == 303 for a in answers)} "
        f"(statuses {sorted(a.status for a in answers)}); stored and decrypted: {len(stored)}"
    )
    print(f"slow connections still open when the real forms were answered: {still_open}/40")
    print(
        f"slow connections ended with: {dict(Counter(o.status for o in outcomes))} "
        f"(None: no answer within the client's 15 s), "
        f"longest {max(o.seconds for o in outcomes):.1f} s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
