"""Source activity reaches the logs only as daily totals, never per submission.

A log line per tip would carry the log driver's timestamp (Docker, journald),
and with it the time of every submission (promise 6).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from relay.activity import ActivityTally
from tests import support_logcapture
from tests.support_forms import Form, submit_form
from tests.support_logcapture import CapturedLog
from tests.support_server import running_relay

captured_log = support_logcapture.captured_log


def test_a_day_is_reported_only_once_it_is_over(captured_log: CapturedLog) -> None:
    today = ["2026-11-24"]
    tally = ActivityTally(today=lambda: today[0])
    tally.count("submission_stored_server_sealed")
    tally.count("submission_stored_server_sealed")
    tally.count("upload_rejected")
    tally.report_finished_days()
    assert [e for e in captured_log.events if e.get("event") == "activity.daily"] == []

    today[0] = "2026-11-25"
    tally.count("upload_rejected")
    tally.report_finished_days()
    reported = [e for e in captured_log.events if e.get("event") == "activity.daily"]
    assert sorted((e["day"], e["reason"], e["count"]) for e in reported) == [
        ("2026-11-24", "submission_stored_server_sealed", 2),
        ("2026-11-24", "upload_rejected", 1),
    ]
    tally.report_finished_days()  # already reported days are forgotten
    assert len([e for e in captured_log.events if e.get("event") == "activity.daily"]) == 2


def test_submissions_add_no_log_lines_and_totals_appear_at_shutdown(tmp_path: Path) -> None:
    with running_relay(tmp_path / "relay", {"log_format": "json"}) as relay:
        before = relay.log_text().splitlines()

        async def three_submissions() -> list[int]:
            return [
                (await submit_form(relay.port, Form(message=f"tip {i}", lang="en"))).status
                for i in range(3)
            ]

        assert asyncio.run(three_submissions()) == [303, 303, 303]
        assert relay.log_text().splitlines() == before
    lines = [json.loads(line) for line in relay.log_text().splitlines() if line.startswith("{")]
    totals = [line for line in lines if line.get("event") == "activity.daily"]
    assert [(t["reason"], t["count"]) for t in totals] == [("submission_stored_server_sealed", 3)]
