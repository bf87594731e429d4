"""Small hardening fixes from issue 13: strict numbers, no caching, ..."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.digits import parse_ascii_decimal
from relay.manifest import SubmissionInfo
from relay.server.rendering import STATIC_DIR
from relay.server.static_files import static_file_path
from tests.support_server import RelayServer, running_relay

NOT_ASCII_DIGITS = ["²", "٣", "３", "1²", "१२", "", " 1", "1 ", "+1", "-1", "1_000", "1.0", "1\n"]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_only_ascii_digits_are_a_number(text: str) -> None:
    assert parse_ascii_decimal(text, max_digits=20) is None
    assert parse_ascii_decimal(text.encode("utf-8"), max_digits=20) is None


def test_ascii_digits_are_read_up_to_the_digit_limit() -> None:
    assert parse_ascii_decimal("0", max_digits=1) == 0
    assert parse_ascii_decimal(b"1000", max_digits=4) == 1000
    assert parse_ascii_decimal("10000", max_digits=4) is None


def test_a_manifest_day_in_other_digits_is_refused() -> None:
    entry = {"id": "a" * 32, "day": "٢٠٢٦-٠١-٠٢", "size": 1, "sha256": "0" * 64,
             "sealed_by": "browser"}
    with pytest.raises(ValueError, match="no valid day"):
        SubmissionInfo.from_json(entry)
    entry["day"] = "2026-01-02"
    assert SubmissionInfo.from_json(entry).day == "2026-01-02"


# --- item 6: nothing a source loads is cached or carries a validator ----------------

SOURCE_PATHS = [
    "/",
    "/?lang=en",
    "/received",
    "/healthz",
    "/static/relay.css",
    "/static/relay.css?v=0123456789abcdef",
    "/static/dist/app.js",
    "/static/no-such-file.css",
    "/static/../config.py",
    "/static/%2e%2e/rendering.py",
    "/no/such/page",
]

CONDITIONAL_HEADERS = [
    {},
    {"If-None-Match": "*"},
    {"If-None-Match": '"anything"'},
    {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    {"If-None-Match": "*", "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
]


def _get(
    relay: RelayServer, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    with running_relay(tmp_path_factory.mktemp("small-hardening") / "relay") as server:
        yield server


def test_no_source_response_is_cached_validated_or_answered_304(relay: RelayServer) -> None:
    bundle = (STATIC_DIR / "dist" / "app.js").read_bytes()
    css = (STATIC_DIR / "relay.css").read_bytes()
    for path in SOURCE_PATHS:
        for conditional in CONDITIONAL_HEADERS:
            status, headers, body = _get(relay, path, conditional)
            where = f"{path} with {conditional}"
            assert status != 304, where
            assert headers.get("cache-control") == "no-store", where
            assert "etag" not in headers and "last-modified" not in headers, where
            assert "expires" not in headers and "age" not in headers, where
            if path.startswith("/static/relay.css"):
                assert (status, body) == (200, css), where
            elif path == "/static/dist/app.js":
                assert (status, body) == (200, bundle), where
                assert headers["content-type"].startswith(("text/javascript",
                                                           "application/javascript")), where
            elif path.startswith(("/static/", "/no/")):
                assert status == 404, where


def test_the_form_page_links_static_files_that_answer_uncached(relay: RelayServer) -> None:
    _, _, page = _get(relay, "/?lang=en", {})
    links = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page)
    assert links, "the form links no static file"
    for link in links:
        status, headers, _ = _get(relay, link.decode().replace("&amp;", "&"), {})
        assert status == 200 and headers["cache-control"] == "no-store", link
        assert "etag" not in headers and "last-modified" not in headers, link


def test_a_static_symlink_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real.css").write_text("x")
    (tmp_path / "link.css").symlink_to(tmp_path / "real.css")
    (tmp_path / "sub").symlink_to(tmp_path, target_is_directory=True)
    assert static_file_path(tmp_path, "real.css") == tmp_path / "real.css"
    assert static_file_path(tmp_path, "link.css") is None
    assert static_file_path(tmp_path, "sub/real.css") is None
    assert static_file_path(tmp_path, "../real.css") is None
    assert static_file_path(tmp_path, ".hidden") is None
