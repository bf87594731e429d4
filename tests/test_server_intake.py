"""The intake server over real HTTP on 127.0.0.1: the no-JS path, limits, headers,
languages, crash safety. Every relay here is a real ``tiprelay serve`` process;
stored blobs are read back with the stock ``age`` and ``tar`` binaries."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support_forms import FilePart, Form, Response, send_request, submit_form
from tests.support_server import (
    RelayServer,
    generate_identity,
    new_relay,
    running_relay,
    write_reviewer_key_file,
)

MiB = 1024 * 1024

# Small limits so that every refusal is cheap to provoke.
STRICT_SETTINGS = {
    "max_message_bytes": 4096,
    "max_attachments": 3,
    "max_submission_bytes": MiB,
    "request_timeout_seconds": 2,
    "default_language": "en",
}


# --- fixtures and helpers -------------------------------------------------------


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """A relay with the default settings (Russian pages by default)."""
    with running_relay(tmp_path_factory.mktemp("default") / "relay") as server:
        yield server


@pytest.fixture(scope="module")
def strict_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """A relay with small limits; nothing sent to it is ever accepted."""
    with running_relay(tmp_path_factory.mktemp("strict") / "relay", STRICT_SETTINGS) as server:
        yield server


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def http_get(url: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def stored_rows(relay: RelayServer) -> set[str]:
    database = relay.data_dir / "relay.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM submissions")}


def blob_ids(relay: RelayServer) -> set[str]:
    return {path.name.removesuffix(".age") for path in relay.blob_paths()}


def leftover_temporary_files(relay: RelayServer) -> list[str]:
    """Files in the store's tmp/, the server's TMPDIR, or still open but deleted."""
    found = [str(path) for path in (relay.data_dir / "tmp").iterdir()]
    found += [str(path) for path in relay.tmp_dir.rglob("*")]
    assert relay.proc is not None
    for fd in Path(f"/proc/{relay.proc.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.endswith("(deleted)") or target.startswith(str(relay.tmp_dir)):
            found.append(target)
    return found


def assert_nothing_stored(relay: RelayServer) -> None:
    """No row, no blob, no temporary file (allowing the server a moment to close files)."""
    deadline = time.monotonic() + 5
    while leftover_temporary_files(relay) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftover_temporary_files(relay) == []
    assert stored_rows(relay) == set()
    assert blob_ids(relay) == set()
    assert relay.is_healthy()


def extract_with_stock_tools(relay: RelayServer, blob: Path, out_dir: Path) -> Path:
    """``age -d -i identity blob | tar -x -C out_dir``, the reviewer's fallback."""
    out_dir.mkdir(parents=True)
    subprocess.run(
        f"age -d -i '{relay.identity_path}' '{blob}' | tar -x -C '{out_dir}'",
        shell=True,
        check=True,
        capture_output=True,
    )
    return out_dir


def assert_security_headers(headers: dict[str, str]) -> None:
    lower = {name.lower(): value for name, value in headers.items()}
    csp = lower["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert lower["referrer-policy"] == "no-referrer"
    assert lower["x-content-type-options"] == "nosniff"
    assert lower["cross-origin-opener-policy"] == "same-origin"
    assert lower["cross-origin-resource-policy"] == "same-origin"
    assert "camera=()" in lower["permissions-policy"]
    assert "server" not in lower
    assert "set-cookie" not in lower
    assert lower["cache-control"] == "no-store"
    assert "etag" not in lower and "last-modified" not in lower


# --- pages, headers, languages ------------------------------------------------------


def test_form_page_works_without_javascript_and_has_no_inline_code(relay: RelayServer) -> None:
    status, headers, page = http_get(relay.url + "/")
    assert status == 200
    assert_security_headers(headers)
    assert headers["Cache-Control"] == "no-store"
    assert '<html lang="ru">' in page
    assert re.search(
        r'<form id="submission-form" action="/submit" method="post"\s+'
        r'enctype="multipart/form-data"',
        page,
    )
    assert '<textarea id="message" name="message"' in page
    assert '<input id="attachment" type="file" name="attachment" multiple' in page
    assert 'id="submission-status"' in page
    assert "style=" not in page and "<style" not in page
    assert "onclick" not in page and "javascript:" not in page
    for script in re.findall(r"<script[^>]*>", page):
        if 'type="application/json"' in script:
            continue  # data, not code: CSP never runs it
        assert re.fullmatch(r'<script src="/static/[^"]+" defer>', script), script
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith("/"), f"external resource {url}"
    # The honest explanation, in the default language (Russian).
    assert "Tor Browser" in page
    assert "шифрует сервер" in page


@pytest.mark.parametrize(
    ("lang", "heading", "button"),
    [
        ("ru", "Напишите нам", "Отправить"),
        ("uk", "Напишіть нам", "Надіслати"),
        ("en", "Send us a message", "Send"),
    ],
)
def test_form_is_offered_in_russian_ukrainian_and_english(
    relay: RelayServer, lang: str, heading: str, button: str
) -> None:
    status, headers, page = http_get(f"{relay.url}/?lang={lang}")
    assert status == 200
    assert f'<html lang="{lang}">' in page
    assert f"<h1>{heading}</h1>" in page
    assert f">{button}</button>" in page
    assert f'<input type="hidden" name="lang" value="{lang}">' in page
    # The switcher: plain links, no cookie.
    for code in ("ru", "uk", "en"):
        assert f'href="/?lang={code}"' in page
    assert "Set-Cookie" not in headers


def test_unknown_language_falls_back_to_the_configured_default(relay: RelayServer) -> None:
    _, _, page = http_get(f"{relay.url}/?lang=de")
    assert '<html lang="ru">' in page


def test_static_css_is_not_cached_and_error_pages_carry_the_headers_too(
    relay: RelayServer,
) -> None:
    _, _, page = http_get(relay.url + "/?lang=en")
    css_url = re.search(r'href="(/static/relay\.css\?v=[0-9a-f]+)"', page)
    assert css_url is not None
    status, headers, css = http_get(relay.url + css_url.group(1))
    assert status == 200 and "body" in css
    assert_security_headers(headers)

    status, headers, page = http_get(relay.url + "/no/such/page?lang=uk")
    assert status == 404
    assert_security_headers(headers)
    assert "Сторінку не знайдено" in page

    status, headers, page = http_get(relay.url + "/submit?lang=en")
    assert status == 405
    assert_security_headers(headers)
    assert "This request is not possible here" in page


def test_healthz_answers_ok_and_reveals_no_counts(relay: RelayServer) -> None:
    status, headers, body = http_get(relay.url + "/healthz")
    assert status == 200
    assert body.strip() == '{"status": "ok"}'
    assert_security_headers(headers)


def test_onion_location_is_sent_only_when_configured(tmp_path: Path) -> None:
    onion = "a" * 56 + ".onion"
    with running_relay(tmp_path / "relay", {"onion_address": onion}) as onion_relay:
        _, headers, _ = http_get(onion_relay.url + "/?lang=en")
    assert headers["Onion-Location"] == f"http://{onion}/?lang=en"


def test_no_onion_location_header_without_an_onion_address(relay: RelayServer) -> None:
    _, headers, _ = http_get(relay.url + "/")
    assert "Onion-Location" not in headers


# --- the no-JS submission ----------------------------------------------------------


@pytest.mark.slow
def test_message_with_three_attachments_decrypts_with_stock_age_and_tar(
    relay: RelayServer, tmp_path: Path
) -> None:
    big = os.urandom(50 * MiB)
    files = [
        FilePart("Доклад о ситуации в части.bin", big),
        FilePart("../../../etc/cron.d/evil name.txt", b"not a cron job\n"),
        FilePart("..\\..\\Windows\\фото 1.jpg", b"\xff\xd8\xff\xe0 fake jpeg"),
    ]
    message = "Здравствуйте.\r\nЭто проверка: три файла, один большой."
    before = blob_ids(relay)
    response = run(submit_form(relay.port, Form(message=message, files=files, lang="ru")))
    assert response.status == 303
    assert response.headers["location"] == "/received?lang=ru"
    (new_blob,) = blob_ids(relay) - before

    listing = subprocess.run(
        f"age -d -i '{relay.identity_path}' '{relay.data_dir}/blobs/{new_blob}.age' | tar -t",
        shell=True, check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    assert all(".." not in name and not name.startswith("/") for name in listing)

    out = extract_with_stock_tools(relay, relay.data_dir / "blobs" / f"{new_blob}.age",
                                   tmp_path / "out")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted([
        "message.txt",
        "submission.json",
        "files/Доклад о ситуации в части.bin",
        "files/evil name.txt",
        "files/фото 1.jpg",
    ])
    assert (out / "message.txt").read_text() == message.replace("\r\n", "\n")
    stored_big = (out / "files" / "Доклад о ситуации в части.bin").read_bytes()
    assert hashlib.sha256(stored_big).digest() == hashlib.sha256(big).digest()
    assert (out / "files" / "evil name.txt").read_bytes() == b"not a cron job\n"
    assert (out / "files" / "фото 1.jpg").read_bytes() == b"\xff\xd8\xff\xe0 fake jpeg"
    meta = (out / "submission.json").read_text()
    assert '"sealed_by": "server"' in meta and '"language": "ru"' in meta


def test_receipt_page_tells_the_source_the_server_sealed_it(relay: RelayServer) -> None:
    response = run(submit_form(relay.port, Form(message="короткое сообщение", lang="uk")))
    assert response.status == 303
    status, headers, page = http_get(relay.url + response.headers["location"])
    assert status == 200
    assert_security_headers(headers)
    assert "Ваше повідомлення отримано" in page
    assert "зашифровано на цьому сервері" in page
    assert not re.search(r"[0-9a-f]{32}", page), "the receipt must not name the submission"


def test_a_blank_file_input_is_ignored(relay: RelayServer, tmp_path: Path) -> None:
    before = blob_ids(relay)
    form = Form(message="only text", lang="en", empty_file_input=True)
    assert run(submit_form(relay.port, form)).status == 303
    (new_blob,) = blob_ids(relay) - before
    out = extract_with_stock_tools(relay, relay.data_dir / "blobs" / f"{new_blob}.age",
                                   tmp_path / "out")
    assert not (out / "files").exists()


def test_marker_in_message_names_and_headers_appears_nowhere_on_disk_or_in_logs(
    relay: RelayServer,
) -> None:
    marker = "MARKER" + os.urandom(8).hex()
    tracking_headers = {
        "User-Agent": f"Mozilla/5.0 {marker}",
        "X-Forwarded-For": f"203.0.113.9, {marker}",
        "Referer": f"http://{marker}.example/",
        "Cookie": f"session={marker}",
    }

    async def many_submissions() -> list[int]:
        statuses = []
        for index in range(8):
            form = Form(
                message=f"{marker} сообщение {index}",
                files=[FilePart(f"{marker} отчёт {index}.pdf", f"{marker} data".encode())],
                lang="ru",
            )
            response = await submit_form(
                relay.port, form, path=f"/submit?lang=en&{marker}=1",
                extra_headers=tracking_headers,
            )
            statuses.append(response.status)
        # Refusals must not log what they refuse either.
        refused = [
            Form(message=f"{marker}".encode() + b"\xff\xfe", lang="ru"),
            Form(
                boundary="XyZzY",
                message=marker,
                extra_parts=[_raw_part(f'Content-Disposition: form-data; name="{marker}"')],
            ),
            Form(
                boundary="XyZzY",
                message=marker,
                extra_parts=[_raw_part(f"Content-Disposition: {marker} x; =; filename")],
            ),
        ]
        for form in refused:
            response = await submit_form(relay.port, form, extra_headers=tracking_headers)
            statuses.append(response.status)
        return statuses

    statuses = run(many_submissions())
    assert statuses[:8] == [303] * 8
    assert all(status == 400 for status in statuses[8:])
    needle = marker.encode()
    places = [relay.data_dir, relay.tmp_dir]
    for place in places:
        for path in place.rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), f"marker found in {path}"
    assert marker not in relay.log_text()


# --- hostile and broken input --------------------------------------------------------


def _boundary_form(**kwargs: object) -> Form:
    return Form(boundary="XyZzY", **kwargs)  # type: ignore[arg-type]


def _raw_part(headers: str, body: bytes = b"x") -> bytes:
    return f"--XyZzY\r\n{headers}\r\n\r\n".encode() + body + b"\r\n"


HOSTILE_FORMS: dict[str, tuple[Form, int, str]] = {
    "message_too_long": (Form(message="я" * 3000), 413, "Your message is too long"),
    "too_many_files": (
        Form(message="hi", files=[FilePart(f"f{i}", b"x") for i in range(4)]),
        400,
        "Too many files",
    ),
    "payload_over_the_total_limit": (
        Form(message="hi", files=[FilePart("big.bin", b"x" * (MiB + 10_000))]),
        413,
        "Too much to send at once",
    ),
    "empty_message_and_no_files": (Form(message=""), 400, "Nothing to send"),
    "whitespace_message_and_a_blank_file_input": (
        Form(message=" \r\n\t", empty_file_input=True), 400, "Nothing to send"
    ),
    "no_message_field_at_all": (Form(message=None), 400, "Nothing to send"),
    "invalid_utf8_message": (
        Form(message=b"caf\xe9 \xff\xfe"), 400, "Your message could not be read"
    ),
    "unknown_field": (
        _boundary_form(
            message="hi", extra_parts=[_raw_part('Content-Disposition: form-data; name="evil"')]
        ),
        400,
        "The form could not be read",
    ),
    "second_message_field": (
        _boundary_form(
            message="hi",
            extra_parts=[_raw_part('Content-Disposition: form-data; name="message"')],
        ),
        400,
        "The form could not be read",
    ),
    "nested_multipart": (
        _boundary_form(
            message="hi",
            extra_parts=[_raw_part(
                'Content-Disposition: form-data; name="attachment"\r\n'
                "Content-Type: multipart/mixed; boundary=inner",
                b"--inner\r\n\r\nx\r\n--inner--",
            )],
        ),
        400,
        "The form could not be read",
    ),
    "part_header_line_too_long": (
        _boundary_form(
            message="hi",
            extra_parts=[_raw_part(
                'Content-Disposition: form-data; name="attachment"; filename="'
                + "a" * 20_000 + '"'
            )],
        ),
        400,
        "The form could not be read",
    ),
    "too_many_part_headers": (
        _boundary_form(
            message="hi",
            extra_parts=[_raw_part(
                'Content-Disposition: form-data; name="attachment"; filename="a"\r\n'
                + "\r\n".join(f"X-Header-{i}: {i}" for i in range(300))
            )],
        ),
        400,
        "The form could not be read",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FORMS))
def test_hostile_form_is_refused_clearly_and_nothing_is_stored(
    strict_relay: RelayServer, case: str
) -> None:
    form, status, title = HOSTILE_FORMS[case]
    response = run(submit_form(strict_relay.port, form, path="/submit?lang=en"))
    assert response.status == status
    assert f"<h1>{title}</h1>" in response.text
    assert "Nothing was stored." in response.text
    assert_security_headers(response.headers)
    assert_nothing_stored(strict_relay)


def _post_raw(relay: RelayServer, headers: dict[str, str], body: bytes) -> Response:
    response = run(send_request(relay.port, "POST", "/submit?lang=en", headers, [body]))
    assert response is not None
    return response


BROKEN_BODIES: dict[str, tuple[dict[str, str], bytes, int, str]] = {
    "truncated_multipart_without_closing_boundary": (
        {"Content-Type": "multipart/form-data; boundary=XyZzY"},
        b'--XyZzY\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello\r\n'
        b'--XyZzY\r\nContent-Disposition: form-data; name="attachment"; filename="a"\r\n\r\n'
        + b"partial data",
        400,
        "The form could not be read",
    ),
    "multipart_without_boundary_parameter": (
        {"Content-Type": "multipart/form-data"}, b"message=hi", 400, "The form could not be read"
    ),
    "not_multipart_at_all": (
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"message=hello",
        400,
        "The form could not be read",
    ),
    "garbage_instead_of_multipart": (
        {"Content-Type": "multipart/form-data; boundary=XyZzY"},
        os.urandom(4096),
        400,
        "The form could not be read",
    ),
    "boundary_longer_than_the_standard_allows": (
        {"Content-Type": "multipart/form-data; boundary=" + "b" * 200},
        b"--" + b"b" * 200 + b"--\r\n",
        400,
        "The form could not be read",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_BODIES))
def test_broken_body_is_refused_clearly_and_nothing_is_stored(
    strict_relay: RelayServer, case: str
) -> None:
    headers, body, status, title = BROKEN_BODIES[case]
    response = _post_raw(strict_relay, {**headers, "Content-Length": str(len(body))}, body)
    assert response.status == status
    assert f"<h1>{title}</h1>" in response.text
    assert_nothing_stored(strict_relay)


def test_compressed_request_body_is_not_inflated(strict_relay: RelayServer) -> None:
    """A gzip bomb would expand to gigabytes; the relay treats it as the bytes it is."""
    form = Form(message="hi " * 100_000)
    compressed = gzip.compress(form.body())
    headers = {"Content-Type": form.content_type, "Content-Encoding": "gzip",
               "Content-Length": str(len(compressed))}
    response = _post_raw(strict_relay, headers, compressed)
    assert response.status == 400
    assert "<h1>The form could not be read</h1>" in response.text
    assert_nothing_stored(strict_relay)


def test_declared_oversize_is_refused_before_the_body_is_read(
    strict_relay: RelayServer,
) -> None:
    form = Form(message="hi", files=[FilePart("a.bin", b"x" * 1000)], lang="uk")
    headers = {"Content-Type": form.content_type, "Content-Length": str(5 * 1024**3)}
    started = time.monotonic()
    response = run(send_request(strict_relay.port, "POST", "/submit", headers,
                                [form.body()], read_timeout=5))
    assert response is not None and response.status == 413
    assert time.monotonic() - started < 3
    # In the language of the form, read from its first field.
    assert "<h1>Забагато для одного надсилання</h1>" in response.text
    assert_nothing_stored(strict_relay)


def test_chunked_upload_over_the_limit_is_cut_off_while_streaming(
    strict_relay: RelayServer,
) -> None:
    form = Form(message="hi", files=[FilePart("big.bin", b"y" * (3 * MiB))])
    response = run(submit_form(strict_relay.port, form, path="/submit?lang=en", chunked=True))
    assert response.status == 413
    assert "<h1>Too much to send at once</h1>" in response.text
    assert_nothing_stored(strict_relay)


def test_invalid_chunked_encoding_is_refused(strict_relay: RelayServer) -> None:
    headers = {
        "Content-Type": "multipart/form-data; boundary=XyZzY",
        "Transfer-Encoding": "chunked",
    }
    body = b"zz-not-a-hex-size\r\n--XyZzY\r\n\r\n"
    response = run(send_request(strict_relay.port, "POST", "/submit?lang=en", headers, [body],
                                read_timeout=10))
    # When the bad chunk arrives with the headers, aiohttp answers 400 itself,
    # before the application sees the request; when it arrives later, the body
    # never ends for the handler and the request time limit ends it (408).
    assert response is not None and response.status in (400, 408)
    assert_nothing_stored(strict_relay)


def test_client_that_stops_sending_halfway_gets_408_and_nothing_is_stored(
    strict_relay: RelayServer,
) -> None:
    form = Form(message="hi", files=[FilePart("a.bin", b"z" * 500_000)])
    body = form.body()

    async def stall() -> Response | None:
        async def first_half_then_silence():  # type: ignore[no-untyped-def]
            yield body[: len(body) // 2]
        headers = {"Content-Type": form.content_type, "Content-Length": str(len(body))}
        return await send_request(strict_relay.port, "POST", "/submit?lang=en", headers,
                                  first_half_then_silence(), read_timeout=10)

    started = time.monotonic()
    response = run(stall())
    assert response is not None and response.status == 408
    assert 1.5 < time.monotonic() - started < 8
    assert "<h1>Sending took too long</h1>" in response.text
    assert_nothing_stored(strict_relay)


def test_client_that_disconnects_halfway_leaves_nothing(strict_relay: RelayServer) -> None:
    form = Form(message="hi", files=[FilePart("a.bin", b"w" * 600_000)])
    body = form.body()
    headers = {"Content-Type": form.content_type, "Content-Length": str(len(body))}
    run(send_request(strict_relay.port, "POST", "/submit", headers, [body[: len(body) // 2]],
                     close_after_body=True))
    assert_nothing_stored(strict_relay)


def test_error_page_is_in_the_language_of_the_form(strict_relay: RelayServer) -> None:
    response = run(submit_form(strict_relay.port, Form(message="", lang="uk")))
    assert response.status == 400
    assert '<html lang="uk">' in response.text
    assert "<h1>Немає чого надсилати</h1>" in response.text
    assert "Нічого не збережено." in response.text
    response = run(submit_form(strict_relay.port, Form(message="", lang="ru")))
    assert "<h1>Нечего отправлять</h1>" in response.text
    assert_nothing_stored(strict_relay)


# --- operator switches ------------------------------------------------------------


def test_no_js_path_switched_off_refuses_submissions_and_says_why(tmp_path: Path) -> None:
    settings = {"server_sealing_enabled": False, "default_language": "en"}
    with running_relay(tmp_path / "relay", settings) as off:
        response = run(submit_form(off.port, Form(message="hello", lang="en")))
        assert response.status == 403
        assert "<h1>This form needs JavaScript</h1>" in response.text
        response = run(submit_form(off.port, Form(message="hello", lang="ru")))
        assert "<h1>Для этой формы нужен JavaScript</h1>" in response.text
        _, _, page = http_get(off.url + "/?lang=en")
        assert "This form works only with JavaScript on" in page
        assert "the server encrypts what you send" not in page
        assert stored_rows(off) == set() and blob_ids(off) == set()


def test_submissions_are_refused_with_507_when_the_disk_reserve_is_reached(
    tmp_path: Path,
) -> None:
    settings = {"disk_reserve_bytes": "1000 TiB", "default_language": "en"}
    with running_relay(tmp_path / "relay", settings) as full:
        response = run(submit_form(full.port, Form(message="hello")))
        assert response.status == 507
        assert "<h1>The relay cannot accept messages right now</h1>" in response.text
        assert_nothing_stored(full)


# --- keys -----------------------------------------------------------------------------


def _serve_once(relay: RelayServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("tiprelay")), "serve", "--config",
         str(relay.config_path)],
        capture_output=True, text=True, timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("TIPRELAY_")},
    )


def test_serve_refuses_to_start_without_a_reviewer(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay")
    for key_file in relay.keys_dir.iterdir():
        key_file.unlink()
    result = _serve_once(relay)
    assert result.returncode != 0
    assert "No reviewer" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_with_a_private_key_in_keys(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay")
    (relay.keys_dir / "oops.txt").write_text(relay.identity_path.read_text())
    result = _serve_once(relay)
    assert result.returncode != 0
    assert "private" in result.stderr.lower() or "secret" in result.stderr.lower()
    assert "AGE-SECRET-KEY-1" not in result.stderr.replace("AGE-SECRET-KEY-1...", "")
    assert "Traceback" not in result.stderr


def test_sighup_reloads_reviewer_keys_and_a_broken_reload_keeps_the_old_ones(
    tmp_path: Path,
) -> None:
    with running_relay(tmp_path / "relay", {"default_language": "en"}) as hup:
        second_identity = tmp_path / "second.txt"
        write_reviewer_key_file(hup.keys_dir, "second", generate_identity(second_identity))
        hup.reload_keys()
        deadline = time.monotonic() + 5
        while "keyring.reloaded" not in hup.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run(submit_form(hup.port, Form(message="for both"))).status == 303
        (blob,) = hup.blob_paths()
        for identity in (hup.identity_path, second_identity):
            plain = subprocess.run(["age", "-d", "-i", str(identity), str(blob)],
                                   check=True, capture_output=True).stdout
            assert b"for both" in plain

        (hup.keys_dir / "broken.toml").write_text("name = \n")
        hup.reload_keys()
        deadline = time.monotonic() + 5
        while "keyring.reload_failed" not in hup.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "keyring.reload_failed" in hup.log_text()
        assert hup.is_healthy()
        assert run(submit_form(hup.port, Form(message="still works"))).status == 303


# --- crash safety ------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_twenty_uploads_loses_no_receipted_submission(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay", {"default_language": "en"})
    relay.start()
    try:
        payloads = {f"submission {index}": os.urandom((1 + index % 4) * MiB) for index in range(20)}
        receipted: list[str] = []

        async def upload(message: str, data: bytes, delay: float) -> None:
            await asyncio.sleep(delay)
            form = Form(message=message, files=[FilePart("evidence.bin", data)])

            async def slowly():  # type: ignore[no-untyped-def]
                # 64 KiB every 5 ms: all twenty are in flight at once.
                for piece in form.pieces():
                    for start in range(0, len(piece), 64 * 1024):
                        yield piece[start : start + 64 * 1024]
                        await asyncio.sleep(0.005)

            headers = {"Content-Type": form.content_type, "Content-Length": str(form.length())}
            try:
                response = await send_request(relay.port, "POST", "/submit", headers, slowly(),
                                              read_timeout=30)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                return
            if response is not None and response.status == 303:
                receipted.append(message)

        async def upload_all_and_kill() -> None:
            tasks = [asyncio.create_task(upload(message, data, index * 0.01))
                     for index, (message, data) in enumerate(payloads.items())]
            while len(receipted) < 6:
                await asyncio.sleep(0.01)
            relay.kill()
            await asyncio.gather(*tasks)

        run(upload_all_and_kill())
        assert 6 <= len(receipted) < 20, "the kill should come in the middle of the uploads"

        relay.start()
        rows, blobs = stored_rows(relay), blob_ids(relay)
        assert rows == blobs
        assert list((relay.data_dir / "tmp").iterdir()) == []
        found: dict[str, bytes] = {}
        for blob in relay.blob_paths():
            out = extract_with_stock_tools(relay, blob, tmp_path / "out" / blob.stem)
            message = (out / "message.txt").read_text()
            found[message] = (out / "files" / "evidence.bin").read_bytes()
        assert set(receipted) <= set(found)
        for message, data in found.items():
            assert data == payloads[message]
    finally:
        relay.stop()


def test_signals_stop_the_relay_cleanly(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay")
    relay.start()
    assert relay.proc is not None
    relay.proc.send_signal(signal.SIGTERM)
    assert relay.proc.wait(timeout=15) == 0
    relay.stop()
    assert "Traceback" not in relay.log_text()


def test_retention_task_deletes_submissions_older_than_the_setting(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay", {"retention_days": 30, "default_language": "en"})
    relay.start()
    try:
        for text in ("old", "new"):
            assert run(submit_form(relay.port, Form(message=text))).status == 303
        relay.stop()
        old_id = next(
            blob.stem for blob in relay.blob_paths()
            if b"old" in relay.decrypt_with_stock_age(blob)
        )
        database = relay.data_dir / "relay.sqlite3"
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE submissions SET day = '2000-01-01' WHERE id = ?", [old_id])
        connection.close()
        relay.start()  # the retention task runs at start, then every hour
        deadline = time.monotonic() + 10
        while old_id in stored_rows(relay) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert old_id not in stored_rows(relay) and old_id not in blob_ids(relay)
        assert len(stored_rows(relay)) == 1 and stored_rows(relay) == blob_ids(relay)
    finally:
        relay.stop()


def test_stalled_uploads_hold_no_sealing_slot(tmp_path: Path) -> None:
    """Slots (max_concurrent_submissions) are for sealing: half-sent forms do not take them.

    (Slow senders are cut off by the pace limits: tests/test_slow_clients.py.)
    """
    with running_relay(tmp_path / "relay", {"max_concurrent_submissions": 2}) as relay:

        async def scenario() -> Response:
            form = Form(message="slow", files=[FilePart("a.bin", b"s" * 400_000)], lang="ru")
            body = form.body()
            head = (
                f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: {form.content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            stalled = []
            try:
                for _ in range(3):  # more sources on stalled circuits than there are slots
                    _reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
                    stalled.append(writer)
                    writer.write(head + body[: len(body) // 2])
                    await writer.drain()
                await asyncio.sleep(0.5)
                return await submit_form(relay.port, Form(message="третий", lang="ru"))
            finally:
                for writer in stalled:
                    writer.close()

        accepted = run(scenario())
        assert accepted.status == 303
        assert len(relay.blob_paths()) == 1
