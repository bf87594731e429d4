"""Small hardening fixes from issue 13: strict numbers, no caching, no core dumps."""

from __future__ import annotations

import http.client
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.digits import parse_ascii_decimal
from relay.manifest import SubmissionInfo
from relay.server.rendering import STATIC_DIR
from relay.server.static_files import static_file_path
from tests.support_process import run
from tests.support_server import RelayServer, generate_identity, new_relay, running_relay

TIPRELAY = Path(sys.executable).with_name("tiprelay")

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


# --- item 7: serve and decrypt never write a core file ------------------------------

# Runs as the parent of the command under test, without CAP_SYS_PTRACE (setpriv), so
# that opening /proc/PID/mem succeeds exactly when the child is dumpable. It lets the
# child write cores (RLIMIT_CORE raised before exec), waits until the child has had
# time to harden itself, reports, then crashes it with SIGABRT and says whether the
# kernel dumped its core.
_CHECKER = r"""
import json, os, resource, signal, subprocess, sys, time

def allow_cores():
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

def core_limits(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])

def dumpable(pid):
    try:
        open(f"/proc/{pid}/mem", "rb").close()
        return True
    except PermissionError:
        return False

child = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=allow_cores)
try:
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        limits, is_dumpable = core_limits(child.pid), dumpable(child.pid)
        if limits == "0 0" and not is_dumpable:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # long enough to be inside the command, waiting on stdin or requests
    report = {"limits": core_limits(child.pid), "dumpable": dumpable(child.pid)}
    os.kill(child.pid, signal.SIGABRT)
    ended = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    report["core_dumped"] = ended.si_code == os.CLD_DUMPED
    report["signal"] = ended.si_status
    print(json.dumps(report))
finally:
    child.kill()
    child.wait()
"""


def _crash_report(argv: list[str | Path], cwd: Path, wait_seconds: float = 20) -> dict[str, object]:
    """Start ``argv`` under the checker; what its core settings were, and whether a crash dumped."""
    done = run(["setpriv", "--bounding-set", "-sys_ptrace", sys.executable, "-c", _CHECKER,
                str(wait_seconds), *argv], cwd=cwd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    assert report["signal"] == signal.SIGABRT, report
    return report


def _core_files(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.startswith("core")]


def test_the_crash_check_sees_an_ordinary_process_dump_core(tmp_path: Path) -> None:
    """The control: a process without tiprelay's switches is dumpable, and its crash dumps."""
    report = _crash_report([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path,
                           wait_seconds=0.5)
    assert report["dumpable"] is True and report["core_dumped"] is True, report
    assert report["limits"] != "0 0", report


def test_serve_is_not_dumpable_and_its_crash_writes_no_core(tmp_path: Path) -> None:
    relay = new_relay(tmp_path / "relay")
    report = _crash_report([TIPRELAY, "serve", "--config", relay.config_path], relay.base_dir)
    assert report == {"limits": "0 0", "dumpable": False, "core_dumped": False,
                      "signal": signal.SIGABRT}
    assert _core_files(relay.base_dir) == []


def test_decrypt_is_not_dumpable_and_its_crash_writes_no_core(tmp_path: Path) -> None:
    identity = tmp_path / "identity.txt"
    generate_identity(identity)
    # It waits on its (empty) standard input, holding the identity.
    report = _crash_report([TIPRELAY, "decrypt", "-i", identity, "-o", tmp_path / "out"], tmp_path)
    assert report == {"limits": "0 0", "dumpable": False, "core_dumped": False,
                      "signal": signal.SIGABRT}
    assert _core_files(tmp_path) == []


def test_disable_core_dumps_reads_its_switches_back(tmp_path: Path) -> None:
    code = (
        "import ctypes, resource; from relay.process_hardening import disable_core_dumps; "
        "print(disable_core_dumps(), resource.getrlimit(resource.RLIMIT_CORE), "
        "ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"
    )
    done = run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[] (0, 0) 0", done.stderr


def test_core_dumps_are_off_in_docker_compose() -> None:
    compose = (Path(__file__).parents[1] / "docker-compose.yml").read_text()
    relay_service = compose[compose.index("  relay:"): compose.index("  tor:")]
    assert re.search(r"ulimits:\s*\n\s+core: 0\n", relay_service), relay_service


# --- item 10: the suite passes however it is started -------------------------------

_INTERRUPT_TEST = "tests/test_cli_crypto.py::test_interrupted_encrypt_leaves_no_partial_file"


def _ignore_like_nohup() -> None:
    """What nohup (SIGHUP) and `cmd &` in a non-interactive shell (SIGINT) leave behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("conftest", [True, False], ids=["with-conftest", "spawn-helpers-alone"])
def test_interrupt_tests_pass_when_the_suite_starts_with_sigint_ignored(
    tmp_path: Path, conftest: bool
) -> None:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}", "-o", "timeout=60", _INTERRUPT_TEST]
    if not conftest:
        argv.insert(3, "--noconftest")
    done = run(argv, preexec_fn=_ignore_like_nohup, cwd=Path(__file__).parents[1],
               capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout, done.stdout[-3000:]
