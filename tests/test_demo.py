"""``tiprelay demo``: one command gives a working, clearly labelled throwaway relay
whose printed commands really read what was submitted."""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support_forms import FilePart, Form, submit_form
from tests.support_process import kill_process, popen, run
from tests.support_server import free_port

TIPRELAY = Path(sys.executable).with_name("tiprelay")


def start_demo(directory: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = popen(
            [TIPRELAY, "demo", "--dir", directory, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, output.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return process
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the demo did not start:\n" + output.read_text())
    except BaseException:
        kill_process(process)
        raise


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops the demo (SIGKILL if that does not do it)."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    finally:
        kill_process(process)


def test_demo_sets_up_a_labelled_relay_and_its_printed_stock_commands_read_submissions(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "my demo"
    port = free_port()
    process = start_demo(directory, port, tmp_path / "out.txt")
    try:
        form = Form(message="тест демо", files=[FilePart("файл.txt", b"demo bytes")])
        assert asyncio.run(submit_form(port, form)).status == 303
    finally:
        stop(process)
    printed = (tmp_path / "out.txt").read_text()
    assert "THROWAWAY DEMO" in printed and "#####" in printed
    assert f"http://127.0.0.1:{port}/" in printed
    # The printed commands name the installed tiprelay, quoted as a shell needs it
    # wherever the checkout is (a folder with spaces, say).
    commands = [shlex.split(line) for line in printed.splitlines()
                if " pull --server " in line or " decrypt -i " in line]  # fmt: skip
    assert [(Path(argv[0]).name, argv[1]) for argv in commands] == [
        ("tiprelay", "pull"),
        ("tiprelay", "decrypt"),
    ], printed
    identity = (directory / "identity.txt").read_text()
    assert "AGE-SECRET-KEY-1" in identity
    assert (directory / "identity.txt").stat().st_mode & 0o077 == 0
    assert "TIPRELAY-ED25519-SECRET-KEY-1" in (directory / "reviewer.key").read_text()
    assert "api_key" in (directory / "keys" / "demo.toml").read_text()

    # The stock-tools loop, exactly as printed.
    loop = printed[printed.index("  for blob in"): printed.index("  done") + len("  done")]
    run(["bash", "-c", loop], check=True, capture_output=True)
    (extracted,) = (directory / "stock").iterdir()
    assert (extracted / "message.txt").read_text() == "тест демо"
    assert (extracted / "files" / "файл.txt").read_bytes() == b"demo bytes"


def test_demo_run_again_keeps_its_keys(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    port = free_port()
    stop(start_demo(directory, port, tmp_path / "first.txt"))
    identity = (directory / "identity.txt").read_text()
    api_key = (directory / "reviewer.key").read_text()
    stop(start_demo(directory, free_port(), tmp_path / "second.txt"))
    assert (directory / "identity.txt").read_text() == identity
    assert (directory / "reviewer.key").read_text() == api_key


def test_demo_printed_pull_and_decrypt_commands_work_as_printed_without_the_venv_on_path(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "demo dir"
    port = free_port()
    elsewhere = tmp_path / "a fresh shell"
    elsewhere.mkdir()
    process = start_demo(directory, port, tmp_path / "out.txt")
    try:
        form = Form(message="read me via pull", files=[FilePart("a.txt", b"pulled")])
        assert asyncio.run(submit_form(port, form)).status == 303
        printed = (tmp_path / "out.txt").read_text()
        commands = [line.strip() for line in printed.splitlines()
                    if " pull --server " in line or " decrypt -i " in line]
        assert len(commands) == 2, printed
        # A fresh login shell: no venv on PATH, somewhere else.
        clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
        assert not (Path("/usr/bin/tiprelay").exists() or Path("/bin/tiprelay").exists())
        for command in commands:
            result = run(["/bin/bash", "-c", command], env=clean_env, cwd=elsewhere,
                         capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (command, result.stderr)
    finally:
        stop(process)
    messages = [p.read_text() for p in (directory / "plaintext").rglob("message.txt")]
    assert messages == ["read me via pull"]
