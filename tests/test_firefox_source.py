"""The source's own browser: Firefox ESR at Tor Browser's three security levels.

At each level a source sends a message with attachments to a real relay from
Debian's Firefox ESR (headless, WebDriver BiDi), and the stored blob, opened
with the stock ``age -d`` and ``tar -x``, gives back exactly what was sent. At
Standard and Safer the page seals in the browser; at Safer the JIT and
WebAssembly are off (``typeof WebAssembly`` proves it). At Safest no page script
runs and the same form posts to ``/submit``, where the server seals. At Standard
and Safer the relay is stopped mid-upload and started again on the same port
and data folder: the upload resumes where the server stopped, in the same
upload, and the blob is still exactly what was sent. Sealing runs in Web
Workers, or on the page's thread where the worker script cannot load; when it
will take long, the page says so and the source can stop.

What only Chromium shows (the request bodies themselves, free of plaintext) stays
in tests/test_browser_sealing.py.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.server.browser_page import MESSAGES
from relay.server.i18n import translations
from tests.support_browser import extract_plaintext_archive, write_files
from tests.support_firefox import SourceVisit, run_firefox_source, source_spec
from tests.support_server import RelayServer, running_relay

pytestmark = pytest.mark.slow  # a Firefox start and a submission: 5 to 30 s each
MiB = 1024 * 1024
CHUNK = 256 * 1024
BUNDLE = Path(__file__).resolve().parent.parent / "relay" / "web" / "static" / "dist" / "app.js"


@pytest.fixture(autouse=True, scope="module")
def bundle_is_built() -> None:
    assert BUNDLE.is_file(), "the browser bundle is missing: run scripts/setup or scripts/build-js"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    with running_relay(tmp_path / "relay", {"upload_chunk_bytes": CHUNK}) as server:
        yield server


def make_attachments(folder: Path, seed: int) -> list[Path]:
    """A text file with a Cyrillic name and a 5 MiB binary (several upload chunks)."""
    rng = random.Random(seed)
    files = {
        "Отчёт о встрече.txt": "Встреча в четверг, 10:00.\n".encode(),
        "video.bin": rng.randbytes(5 * MiB + 4321),
    }
    return write_files(folder, files)


def opened(relay: RelayServer, out_dir: Path) -> Path:
    """The one stored blob, through stock ``age -d -i`` and stock ``tar -x``."""
    blobs = relay.blob_paths()
    assert len(blobs) == 1, blobs
    archive = out_dir.with_suffix(".tar")
    archive.write_bytes(relay.decrypt_with_stock_age(blobs[0]))
    extract_plaintext_archive(archive, out_dir)
    return out_dir


def assert_received_exactly(out: Path, message: str, files: list[Path], sealed_by: str) -> None:
    assert (out / "message.txt").read_text() == message
    for path in files:
        assert (out / "files" / path.name).read_bytes() == path.read_bytes()
    assert json.loads((out / "submission.json").read_text())["sealed_by"] == sealed_by


def uploads(visit: SourceVisit, method: str) -> list[dict[str, Any]]:
    return [r for r in visit.requests if r["method"] == method and "/api/v1/uploads" in r["url"]]


@pytest.mark.parametrize("level", ["standard", "safer"])
def test_the_page_seals_in_firefox_and_stock_age_opens_it(
    level: str, relay: RelayServer, tmp_path: Path
) -> None:
    files = make_attachments(tmp_path / "to-send", seed=11)
    message = f"Firefox, {level}: я хочу уйти."
    visit = run_firefox_source(
        source_spec(f"{relay.url}/?lang=ru", level, tmp_path / "profile", message, files)
    )
    assert visit.mode == "browser"
    assert visit.shown == {"serverSealsNotice": False, "browserSealing": True}
    # Sealed in Web Workers, never on the page's thread: one per reported core
    # (privacy.resistFingerprinting reports a fixed count), at most the
    # relay's seal_workers_max (4), and the 5 MiB attachment is 6 jobs or more.
    assert visit.sealing is not None
    assert visit.sealing["workers"] == min(4, visit.sealing["hardwareConcurrency"]) >= 2
    assert visit.page_errors == []
    # Safer turns the JIT and WebAssembly off; Standard keeps them.
    assert visit.web_assembly == ("undefined" if level == "safer" else "object")
    assert uploads(visit, "POST") and uploads(visit, "PATCH")
    assert not [r for r in visit.requests if r["url"].endswith("/submit")]
    assert_received_exactly(opened(relay, tmp_path / "opened"), message, files, "browser")


def test_at_safest_no_script_runs_and_the_form_posts_for_the_server_to_seal(
    relay: RelayServer, tmp_path: Path
) -> None:
    files = make_attachments(tmp_path / "to-send", seed=12)
    message = "Firefox, safest: без JavaScript."
    visit = run_firefox_source(
        source_spec(f"{relay.url}/?lang=ru", "safest", tmp_path / "profile", message, files)
    )
    assert visit.blocked_scripts, "the page asked for no script, so nothing was blocked"
    assert visit.mode is None  # the bundle never ran
    # JavaScript is on, so until <noscript> is rendered (as NoScript does)
    # there is no Send button: none that could send before a script decides.
    assert visit.noscript_send_before is False
    assert visit.shown == {"serverSealsNotice": True, "browserSealing": False}
    assert uploads(visit, "POST") == [] and uploads(visit, "PATCH") == []
    assert [r for r in visit.requests if r["method"] == "POST" and r["url"].endswith("/submit")]
    assert "/received" in visit.final_url
    assert_received_exactly(opened(relay, tmp_path / "opened"), message, files, "server")


@pytest.mark.parametrize("level", ["standard", "safer"])
def test_an_upload_cut_by_a_relay_restart_resumes_in_the_same_upload(
    level: str, tmp_path: Path
) -> None:
    files = make_attachments(tmp_path / "to-send", seed=13)
    message = f"Firefox, {level}: the relay went away."
    cut: dict[str, int] = {}
    with running_relay(tmp_path / "relay", {"upload_chunk_bytes": CHUNK}) as relay:

        def restart_the_relay(event: dict[str, Any], driver: subprocess.Popen[str]) -> None:
            assert driver.stdin is not None
            if event["event"] == "holding":  # a PATCH past the first chunks waits in Firefox
                cut["offset"] = event["offset"]
                relay.stop()
                assert not relay.is_healthy()
                driver.stdin.write("continue\n")  # into a closed port: the upload is cut
                driver.stdin.flush()
            elif event["event"] == "failed":
                relay.start()  # same port, same data folder

        spec = source_spec(
            f"{relay.url}/?lang=en",
            level,
            tmp_path / "profile",
            message,
            files,
            hold_patch_at_offset=3 * CHUNK,
        )
        visit = run_firefox_source(spec, restart_the_relay)
        assert [e["event"] for e in visit.events if e["event"] in ("holding", "failed")] == [
            "holding",
            "failed",
        ]
        assert_received_exactly(opened(relay, tmp_path / "opened"), message, files, "browser")

    creations = uploads(visit, "POST")
    assert len(creations) == 1, "the page started a second upload instead of resuming"
    offsets = [r["offset"] for r in uploads(visit, "PATCH")]
    held_at = offsets.index(cut["offset"])
    after = offsets[held_at + 1 :]
    # After the restart tus asks the relay where it stands (HEAD) and goes on
    # from there: never from zero again.
    assert uploads(visit, "HEAD")
    assert after and min(after) >= cut["offset"], offsets


def test_when_sealing_will_take_long_the_page_says_so_and_the_source_can_stop(
    tmp_path: Path,
) -> None:
    # Safer (no JIT) and a warning threshold of one second: the estimate passes it.
    big = tmp_path / "to-send" / "long video.bin"
    big.parent.mkdir()
    big.write_bytes(random.Random(14).randbytes(24 * MiB))
    settings = {"upload_chunk_bytes": CHUNK, "seal_slow_warning_seconds": 1}
    with running_relay(tmp_path / "relay", settings) as relay:
        visit = run_firefox_source(
            source_spec(
                f"{relay.url}/?lang=uk",
                "safer",
                tmp_path / "profile",
                "довге",
                [big],
                stop_when_slow=True,
            )
        )
        assert visit.sealing is not None
        notice = visit.sealing["notice"]
        expected = page_text("uk", "slow_sealing").split("%(time)s")
        assert notice.startswith(expected[0]) and notice.endswith(expected[1]), notice
        assert visit.status == page_text("uk", "stopped")
        assert visit.sealing["noticeGone"] and visit.sealing["canSendAgain"]
        assert relay.blob_paths() == []
        # What the relay held of the upload is deleted (tus DELETE), not left behind.
        deleted = [r for r in visit.requests if r["method"] == "DELETE"]
        assert deleted, "the stopped upload was not deleted"


def test_where_no_worker_can_start_the_page_seals_on_its_own_thread(
    relay: RelayServer, tmp_path: Path
) -> None:
    files = make_attachments(tmp_path / "to-send", seed=15)
    spec = source_spec(f"{relay.url}/?lang=en", "standard", tmp_path / "profile", "inline", files)
    spec["blockUrlsEnding"] = ["/static/dist/seal-worker.js"]  # the worker script never loads
    visit = run_firefox_source(spec)
    assert visit.blocked_scripts, "the page never asked for the worker script"
    assert set(visit.blocked_scripts) == {relay.url + "/static/dist/seal-worker.js"}
    assert visit.sealing is not None and visit.sealing["workers"] == 0
    assert_received_exactly(opened(relay, tmp_path / "opened"), "inline", files, "browser")


def page_text(language: str, key: str) -> str:
    return translations(language).gettext(MESSAGES[key])
