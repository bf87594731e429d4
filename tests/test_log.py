"""relay.log: the allow-list keeps request data out of every log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web

from relay.log import (
    REDACTED_EVENT,
    configure_logging,
    duration_bucket,
    get_logger,
    make_formatter,
    size_bucket,
)
from tests import support_logcapture
from tests.support_logcapture import CapturedLog

captured_log = support_logcapture.captured_log

MARKER = "zq7marker"
IP = "203.0.113.77"
USER_AGENT = f"Mozilla/5.0 (Windows NT 10.0; rv:115.0) Gecko/20100101 Firefox/115.0 {MARKER}"
FILE_NAME = f"план побега {MARKER}.pdf"


def assert_clean(text: str) -> None:
    for needle in (MARKER, IP, "Mozilla", "побега"):
        assert needle not in text, f"{needle!r} leaked into the log: {text}"


def test_ip_user_agent_and_file_name_fields_are_dropped(captured_log: CapturedLog):
    log = get_logger("relay.server.submit")
    log.info(
        "submission_stored",
        ip=IP,
        remote=IP,
        user_agent=USER_AGENT,
        filename=FILE_NAME,
        file_name=FILE_NAME,
        referer=f"http://{MARKER}.example/",
        x_forwarded_for=IP,
        query=f"q={MARKER}",
        cookie=MARKER,
        message=MARKER,
        body=MARKER.encode(),
        submission_id="0123456789abcdef0123456789abcdef",
        status=201,
        method="POST",
        route="submit",
    )
    assert_clean(captured_log.text)
    assert captured_log.events == [
        {
            "event": "submission_stored",
            "level": "info",
            "logger": "relay.server.submit",
            "method": "POST",
            "route": "submit",
            "status": 201,
            "submission_id": "0123456789abcdef0123456789abcdef",
        }
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("route", f"/api/v1/submissions/0123456789abcdef0123456789abcdef?name={MARKER}"),
        ("route", f"/files/{MARKER}"),
        ("submission_id", f"../../{MARKER}"),
        ("upload_id", MARKER),
        ("status", f"200 {MARKER}"),
        ("status", True),
        ("reviewer", f"Alice {MARKER}"),
        ("error_type", f"ValueError: {MARKER}"),
        ("component", f"{MARKER} {IP}"),
        ("reason", f"bad file {MARKER}"),
        ("count", f"{MARKER}"),
        ("size_bucket", MARKER),
        ("logger", f"{IP} {MARKER}"),
    ],
)
def test_allowed_field_with_a_data_shaped_value_is_dropped(
    captured_log: CapturedLog, field: str, value: object
):
    get_logger("relay.test").info("something_happened", **{field: value})
    assert_clean(captured_log.text)
    assert field not in captured_log.events[0] or field == "logger"


def test_free_text_event_and_positional_arguments_are_not_logged(captured_log: CapturedLog):
    log = get_logger("relay.test")
    log.info(f"received {FILE_NAME} from {IP}")
    log.info("upload_started %s", USER_AGENT)
    log.bind(ip=IP, user_agent=USER_AGENT).warning("bound_context_test")
    assert_clean(captured_log.text)
    assert [e["event"] for e in captured_log.events] == [
        REDACTED_EVENT,
        REDACTED_EVENT,
        "bound_context_test",
    ]


def test_an_exception_is_logged_by_type_and_place_never_by_message(captured_log: CapturedLog):
    log = get_logger("relay.test")
    try:
        int(FILE_NAME)  # ValueError quoting the file name
    except ValueError:
        log.exception("submit_failed")
    [event] = captured_log.events
    assert event["error_type"] == "ValueError"
    assert re.fullmatch(r"(tests\.)?test_log:\d+", str(event["error_at"]))
    assert event["level"] == "error"
    assert_clean(captured_log.text)
    assert "Traceback" not in captured_log.text


def test_library_log_records_keep_only_logger_level_and_error_type(captured_log: CapturedLog):
    server_log = logging.getLogger("aiohttp.server")
    server_log.warning("Error handling request from %s: %s", IP, USER_AGENT)
    try:
        raise ConnectionResetError(f"peer {IP} reset")
    except ConnectionResetError:
        server_log.exception("Unhandled exception for %s", FILE_NAME)
    logging.getLogger("aiohttp.access").info('%s "GET /?q=%s" 200 "%s"', IP, MARKER, USER_AGENT)
    assert_clean(captured_log.text)
    warning, error = captured_log.events
    assert warning == {"event": "library_message", "level": "warning", "logger": "aiohttp.server"}
    assert re.fullmatch(r"(tests\.)?test_log:\d+", str(error.pop("error_at")))
    assert error == {
        "event": "library_message",
        "level": "error",
        "logger": "aiohttp.server",
        "error_type": "ConnectionResetError",
    }


def test_sizes_and_durations_are_logged_only_as_coarse_buckets(captured_log: CapturedLog):
    get_logger("relay.test").info("timed", size_bucket=123_456_789, duration_bucket=12.3456)
    [event] = captured_log.events
    assert event["size_bucket"] == size_bucket(123_456_789) == "<256MiB"
    assert event["duration_bucket"] == duration_bucket(12.3456) == "<1min"
    assert "123456789" not in captured_log.text and "12.34" not in captured_log.text


def test_level_setting_hides_debug(captured_log: CapturedLog):
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    log = get_logger("relay.test")
    log.info("not_shown")
    log.warning("shown")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["shown"]
    with pytest.raises(ValueError):
        configure_logging("json", "verbose")
    with pytest.raises(ValueError):
        make_formatter("xml")


def test_console_format_is_filtered_too(captured_log: CapturedLog):
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    get_logger("relay.demo").info("demo_started", port=8080, ip=IP, user_agent=USER_AGENT)
    text = stream.getvalue()
    assert "demo_started" in text and "port=8080" in text
    assert_clean(text)


async def _serve_and_request() -> None:
    async def fails(request: web.Request) -> web.Response:
        raise RuntimeError(f"could not store {request.query.get('name')}")

    async def ok(request: web.Request) -> web.Response:
        get_logger("relay.server").info("page_served", route="index", status=200)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok, name="index")
    app.router.add_get("/fail", fails, name="fail")
    runner = web.AppRunner(app)  # aiohttp's default access logger: disabled by configure_logging
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    headers = {"User-Agent": USER_AGENT, "X-Forwarded-For": IP, "Referer": f"http://{MARKER}/"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"http://127.0.0.1:{port}/?name={MARKER}") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/fail?name={FILE_NAME}") as response:
                assert response.status == 500
    finally:
        await runner.cleanup()


def test_real_aiohttp_server_logs_no_request_data(captured_log: CapturedLog):
    asyncio.run(_serve_and_request())
    assert_clean(captured_log.text)
    events = captured_log.events
    assert {"event": "page_served", "level": "info", "logger": "relay.server",
            "route": "index", "status": 200} in events
    # The failing handler shows up as aiohttp's error record: type, no message.
    assert any(e.get("error_type") == "RuntimeError" for e in events)
    assert not any(e.get("logger") == "aiohttp.access" for e in events)


def test_events_are_filtered_even_before_logging_is_configured():
    code = (
        "from relay.log import get_logger\n"
        f"get_logger('relay.early').error('early_failure', ip={IP!r}, user_agent={USER_AGENT!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    output = result.stdout + result.stderr
    assert "early_failure" in output
    assert_clean(output)
