"""The team's digest against real channels on 127.0.0.1 (relay.notify).

A real relay (in this process, on 127.0.0.1, with its real store) counts
real submissions; the digest goes to aiosmtpd, encrypted to an OpenPGP
reviewer whose own gpg opens it, and to an HTTP endpoint through Apprise's
json:// plugin. A channel that hangs or fails is retried a bounded number
of times while tips keep arriving at once; `tiprelay notify-test` says
what each channel answered. No secret of a channel reaches a log.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from relay.config import load_config
from relay.errors import KeyringError
from relay.notify.channels import Channel
from relay.notify.digest import DIGEST_LENGTH, TITLE, Digest, render
from relay.notify.loop import send_digest
from relay.notify.sending import DeliverySettings, Sender
from relay.server.app import create_app, take_digest_counts
from relay.server.appkeys import DIGEST_SENDER
from tests import support_logcapture
from tests.support_forms import Form, submit_form
from tests.support_logcapture import CapturedLog
from tests.support_notify import (
    HTTP_PASSWORD,
    SMTP_PASSWORD,
    http_channel,
    smtp_server,
    write_channels_file,
)
from tests.support_openpgp import GpgReviewer, add_openpgp_reviewer, gpg_reviewer_home
from tests.support_server import RelayServer, new_relay

_TIPRELAY = Path(sys.executable).with_name("tiprelay")
captured_log = support_logcapture.captured_log


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    with gpg_reviewer_home() as reviewer:
        yield reviewer


def _relay(
    tmp_path: Path,
    reviewer: GpgReviewer | None,
    entries: list[dict[str, object]],
    **settings: object,
) -> RelayServer:
    channels = write_channels_file(tmp_path / "notify-channels.toml", entries)
    relay = new_relay(
        tmp_path / "relay",
        {
            "notify_channels_file": str(channels),
            "notify_channel_timeout_seconds": 5,
            **settings,  # type: ignore[dict-item]
        },
    )
    if reviewer is not None:
        add_openpgp_reviewer(relay.keys_dir, "olga", reviewer)
    return relay


@asynccontextmanager
async def _serving(relay: RelayServer) -> AsyncIterator[tuple[web.Application, int]]:
    app = create_app(load_config({}, relay.config_path))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield app, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _digest_now(app: web.Application) -> None:
    await send_digest(lambda: take_digest_counts(app), app[DIGEST_SENDER], None)


def _decrypt(reviewer: GpgReviewer, armored: str) -> str:
    return reviewer.gpg("--decrypt", input_bytes=armored.encode()).decode()


def _assert_no_secret(text: str) -> None:
    for secret in (SMTP_PASSWORD, HTTP_PASSWORD, "olga@example.org", "127.0.0.1:", "mailto://"):
        assert secret not in text, secret


def test_digest_reaches_smtp_encrypted_to_the_reviewer_and_json_in_the_same_size(
    tmp_path: Path, gpg_reviewer: GpgReviewer, captured_log: CapturedLog
) -> None:
    with smtp_server() as smtp, http_channel() as endpoint:
        relay = _relay(
            tmp_path,
            gpg_reviewer,
            [
                {"url": smtp.url(), "reviewer": "olga"},
                {"url": endpoint.url(), "plain": True},
            ],
        )

        async def scenario() -> None:
            async with _serving(relay) as (app, port):
                for text in ("first tip", "a follow-up"):
                    assert (await submit_form(port, Form(message=text))).status == 303
                await _digest_now(app)
                await _digest_now(app)  # nothing new arrived: still sent, still the same size

        asyncio.run(scenario())

        assert smtp.logins == ["relay", "relay"]
        assert [to for to, _ in smtp.messages] == [["olga@example.org"]] * 2
        assert all(message["Subject"] == TITLE for _, message in smtp.messages)
        first, second = smtp.bodies()
        assert first.startswith("-----BEGIN PGP MESSAGE-----")
        assert len(first) == len(second), "the encrypted digest's size must not vary"
        assert "waiting" not in first
        assert _decrypt(gpg_reviewer, first) == render(Digest(waiting=2, arrived=2))
        assert _decrypt(gpg_reviewer, second) == render(Digest(waiting=2, arrived=0))

        messages = [payload["message"] for payload in endpoint.payloads]
        assert messages == [render(Digest(2, 2)), render(Digest(2, 0))]
        assert {len(message) for message in messages} == {DIGEST_LENGTH}
        assert {payload["title"] for payload in endpoint.payloads} == {TITLE}

    sent = [e for e in captured_log.events if e["event"] == "notify.digest_sent"]
    expected = {"channels": 2, "sent": 2, "failed": 0, "level": "info", "logger": "relay.notify"}
    assert sent == [{"event": "notify.digest_sent", **expected}] * 2
    _assert_no_secret(captured_log.text)
    _assert_no_secret(relay.config_path.read_text())


def test_a_hanging_and_a_failing_channel_never_delay_a_tip_and_are_retried_a_bounded_times(
    tmp_path: Path, captured_log: CapturedLog
) -> None:
    with http_channel("hang") as hanging, http_channel("fail") as failing:
        relay = _relay(
            tmp_path,
            None,
            [{"url": hanging.url(), "plain": True}, {"url": failing.url(), "plain": True}],
            notify_channel_timeout_seconds=1,
            notify_retries=1,
            notify_retry_seconds=1,
        )

        async def scenario() -> tuple[float, bool, list[int]]:
            async with _serving(relay) as (app, port):
                delivery = asyncio.create_task(_digest_now(app))
                while hanging.requests == 0:  # the hanging channel holds its first attempt
                    await asyncio.sleep(0.01)
                started = time.monotonic()
                response = await submit_form(port, Form(message="I am at the border tonight"))
                tip_seconds = time.monotonic() - started
                assert response.status == 303
                still_sending = not delivery.done()
                await delivery
                return tip_seconds, still_sending, [hanging.requests, failing.requests]

        tip_seconds, still_sending, requests = asyncio.run(scenario())
    print(f"a tip took {tip_seconds:.3f} s while a channel hung")
    assert still_sending, "the tip must get through while the hanging channel is being tried"
    assert tip_seconds < 1.0
    assert requests == [2, 2], "one try and one retry per channel, no more"
    failures = [
        (e["channel_kind"], e["attempt"], e["reason"])
        for e in captured_log.events
        if e["event"] == "notify.channel_failed"
    ]
    assert sorted(failures) == [
        ("json", 1, "refused"),
        ("json", 1, "timeout"),
        ("json", 2, "refused"),
        ("json", 2, "timeout"),
    ]
    assert [
        (e["sent"], e["failed"]) for e in captured_log.events if e["event"] == "notify.digest_sent"
    ] == [(0, 2)]
    _assert_no_secret(captured_log.text)


def test_notify_test_says_what_each_channel_answered(
    tmp_path: Path, gpg_reviewer: GpgReviewer
) -> None:
    with smtp_server() as smtp, http_channel() as endpoint, http_channel("fail") as failing:
        relay = _relay(
            tmp_path,
            gpg_reviewer,
            [
                {"url": smtp.url(), "reviewer": "olga"},
                {"url": endpoint.url(), "plain": True},
                {"url": failing.url("broken"), "plain": True},
            ],
        )
        result = subprocess.run(
            [str(_TIPRELAY), "notify-test", "--config", str(relay.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == (
            "channel 1 (mailto), encrypted to olga's OpenPGP key: sent (the channel accepted it)"
        )
        assert lines[1] == "channel 2 (json), plain: sent (the channel accepted it)"
        assert lines[2] == (
            "channel 3 (json), plain: failed: the channel refused it or could not be reached"
        )
        assert any(line.startswith("  Apprise said: ") and "500" in line for line in lines[3:])
        assert "1 of 3 channels did not take the test digest" in result.stderr
        _assert_no_secret(result.stdout + result.stderr)
        assert _decrypt(gpg_reviewer, smtp.bodies()[0]) == render(Digest(0, 0, test=True))
        assert [p["message"] for p in endpoint.payloads] == [render(Digest(0, 0, test=True))]
        assert not (relay.data_dir / "relay.sqlite3").exists(), "notify-test opens no store"


def test_serve_starts_with_its_channels_and_refuses_a_file_others_may_read(
    tmp_path: Path,
) -> None:
    with http_channel() as endpoint:
        far_from_now = f"{(time.gmtime().tm_hour + 12) % 24:02d}:00"
        relay = _relay(
            tmp_path, None, [{"url": endpoint.url(), "plain": True}], notify_times=far_from_now
        )
        channels = tmp_path / "notify-channels.toml"
        channels.chmod(0o644)
        refused = subprocess.run(
            [str(_TIPRELAY), "serve", "--config", str(relay.config_path)],
            capture_output=True,
            text=True,
            timeout=30,
            env={k: v for k, v in os.environ.items() if not k.startswith("TIPRELAY_")},
            check=False,
        )
        assert refused.returncode == 1
        assert "may be read by others (mode 0644)" in refused.stderr
        assert "Traceback" not in refused.stderr
        _assert_no_secret(refused.stdout + refused.stderr)

        channels.chmod(0o600)
        relay.start()
        try:
            assert relay.is_healthy()
        finally:
            relay.stop()
    events = [json.loads(line) for line in relay.log_text().splitlines() if line.startswith("{")]
    assert {"event": "notify.enabled", "channels": 1} in [
        {k: v for k, v in e.items() if k in ("event", "channels")} for e in events
    ]
    assert endpoint.requests == 0, "nothing is sent before the first digest time"
    _assert_no_secret(relay.log_text())


def test_a_channel_whose_reviewer_key_is_gone_fails_and_is_never_sent_in_the_clear(
    tmp_path: Path, captured_log: CapturedLog
) -> None:
    with http_channel() as endpoint:
        channel = Channel(1, "json", endpoint.url(), "olga", encrypted=True)

        def no_key(reviewer: str, _text: str) -> str:
            raise KeyringError(f"Reviewer {reviewer} has no OpenPGP key in keys/.")

        sender = Sender([channel], no_key, DeliverySettings(5, 0, 1))
        try:
            (answer,) = asyncio.run(sender.deliver(Digest(3, 1)))
        finally:
            sender.close()
    assert (answer.sent, answer.reason) == (False, "encryption_failed")
    assert endpoint.requests == 0
    assert [e["reason"] for e in captured_log.events if e["event"] == "notify.channel_failed"] == [
        "encryption_failed"
    ]
