"""Page weight for sources on slow Tor circuits: precompressed static files, budgets.

The relay sends each static file as the brotli or gzip copy scripts/build-js
made, when the browser asks (Firefox, so Tor Browser, asks for both), and as it
is otherwise; a copy older than its file is never sent, and the copies are not
files of their own. Pages, and anything else that could carry a secret, are
never compressed (BREACH). The budgets are checked on the bytes that actually
cross the wire when the browser asks as Firefox does: the form page with its CSS
under 30 KB, the JavaScript the form loads under 120 KB; the sealing worker,
loaded only when the source sends, and the OpenPGP wrapper, loaded only on
relays with OpenPGP reviewers, are measured apart.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.server.static_files import accepted_codings, read_static
from tests.support_forms import Form, run, send_request, submit_form
from tests.support_node import NODE
from tests.support_process import run as run_process
from tests.support_server import RelayServer, running_relay

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "relay" / "web" / "static"
FIREFOX_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
FORM_PAGE_BUDGET = 30 * 1024
FORM_SCRIPT_BUDGET = 120 * 1024
WORKER_BUDGET = 20 * 1024
OPENPGP_WRAPPER_BUDGET = 120 * 1024


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    with running_relay(tmp_path_factory.mktemp("relay"), {"default_language": "en"}) as server:
        yield server


def get(relay: RelayServer, path: str, accept_encoding: str | None) -> tuple[dict[str, str], bytes]:
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    response = run(send_request(relay.port, "GET", path, headers))
    assert response is not None and response.status == 200, (path, response)
    return response.headers, response.body


def brotli_decompress(data: bytes, tmp_path: Path) -> bytes:
    """The stock Node.js brotli decoder (Python has none here)."""
    source = tmp_path / "in.br"
    source.write_bytes(data)
    script = (
        "const z=require('node:zlib'),f=require('node:fs');"
        "process.stdout.write(z.brotliDecompressSync(f.readFileSync(process.argv[1])))"
    )
    return bytes(run_process([NODE, "-e", script, source], capture_output=True, check=True).stdout)


def test_static_files_go_out_precompressed_as_asked_and_whole_otherwise(
    relay: RelayServer, tmp_path: Path
) -> None:
    original = (STATIC / "dist" / "app.js").read_bytes()
    headers, body = get(relay, "/static/dist/app.js", FIREFOX_ACCEPT_ENCODING)
    assert headers["content-encoding"] == "br"
    assert brotli_decompress(body, tmp_path) == original
    headers, body = get(relay, "/static/dist/app.js", "gzip, br;q=0")
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == original
    for asked in (None, "identity", "br;q=0, gzip;q=0", "compress"):
        headers, body = get(relay, "/static/dist/app.js", asked)
        assert "content-encoding" not in headers
        assert body == original
    # Still no validators and no caching, and caches are told the answer varies.
    assert headers["vary"] == "Accept-Encoding"
    assert headers["cache-control"] == "no-store"
    assert "etag" not in headers and "last-modified" not in headers
    assert headers["content-type"].startswith("text/javascript")


def test_the_compressed_copies_are_not_files_of_their_own(relay: RelayServer) -> None:
    for path in ("/static/dist/app.js.gz", "/static/dist/app.js.br", "/static/relay.css.gz"):
        response = run(send_request(relay.port, "GET", path, {}))
        assert response is not None and response.status == 404, path


def test_a_copy_older_than_its_file_is_never_sent(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_bytes(b"body { color: black }\n")
    (tmp_path / "style.css.gz").write_bytes(gzip.compress(b"body { color: red }\n"))
    old = (tmp_path / "style.css").stat().st_mtime_ns - 10**9
    os.utime(tmp_path / "style.css.gz", ns=(old, old))
    assert read_static(tmp_path, "style.css", {"gzip"}) == (b"body { color: black }\n", None)
    os.utime(tmp_path / "style.css.gz", ns=(old + 2 * 10**9, old + 2 * 10**9))
    body, coding = read_static(tmp_path, "style.css", {"gzip"}) or (b"", None)
    assert (gzip.decompress(body), coding) == (b"body { color: red }\n", "gzip")


def test_accept_encoding_is_read_with_its_refusals() -> None:
    assert accepted_codings("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert accepted_codings("GZIP;q=0.5, br;q=0") == {"gzip"}
    assert accepted_codings("") == set()


def test_pages_and_the_no_js_submission_are_never_compressed(relay: RelayServer) -> None:
    headers, _ = get(relay, "/?lang=ru", FIREFOX_ACCEPT_ENCODING)
    assert "content-encoding" not in headers
    response = run(
        submit_form(
            relay.port,
            Form(message="секрет", lang="en"),
            extra_headers={"Accept-Encoding": FIREFOX_ACCEPT_ENCODING},
        )
    )
    assert response.status == 303 and "content-encoding" not in response.headers
    headers, _ = get(relay, response.headers["location"], FIREFOX_ACCEPT_ENCODING)
    assert "content-encoding" not in headers


def test_the_form_page_and_its_script_fit_their_budgets_on_the_wire(
    relay: RelayServer,
) -> None:
    weights: dict[str, int] = {}
    for language in ("ru", "uk", "en"):
        _, page = get(relay, f"/?lang={language}", FIREFOX_ACCEPT_ENCODING)
        referenced = sorted(re.findall(r'(?:href|src)="(/static/[^"]+)"', page.decode()))
        assert [url.split("?")[0] for url in referenced] == [
            "/static/dist/app.js",
            "/static/relay.css",
        ]
        _, script = get(relay, referenced[0], FIREFOX_ACCEPT_ENCODING)
        _, css = get(relay, referenced[1], FIREFOX_ACCEPT_ENCODING)
        weights[f"form page ({language}) + CSS"] = len(page) + len(css)
        weights["form script"] = len(script)
    _, worker = get(relay, "/static/dist/seal-worker.js", FIREFOX_ACCEPT_ENCODING)
    weights["sealing worker (loaded on send)"] = len(worker)
    _, wrapper = get(relay, "/static/dist/openpgp-wrap.js", FIREFOX_ACCEPT_ENCODING)
    weights["OpenPGP wrapper (OpenPGP reviewers only)"] = len(wrapper)
    print("bytes on the wire:", weights)
    for language in ("ru", "uk", "en"):
        assert weights[f"form page ({language}) + CSS"] < FORM_PAGE_BUDGET, weights
    assert weights["form script"] < FORM_SCRIPT_BUDGET, weights
    assert weights["sealing worker (loaded on send)"] < WORKER_BUDGET, weights
    assert weights["OpenPGP wrapper (OpenPGP reviewers only)"] < OPENPGP_WRAPPER_BUDGET, weights
