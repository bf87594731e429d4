"""The reviewer's whole workflow over real HTTP: pull to a bundle, decrypt offline.

A real ``tiprelay serve`` with two reviewers (alice has an API key; bob only
an age identity); submissions arrive as a browser without JavaScript sends
them (server-sealed) and as the browser bundle sends them (sealed before
upload, tus). Then the real ``tiprelay pull`` and ``tiprelay decrypt``.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey
from relay.files import file_sha256
from relay.manifest import MANIFEST_NAME, read_manifest
from relay.pull import PullError, pull_bundle
from tests.support_process import kill_process, popen, spawned
from tests.support_reviewer import (
    TIPRELAY,
    Socks5Proxy,
    browser_sealed_submission,
    list_ids,
    recipient_of,
    submit_form,
    upload_sealed,
)
from tests.support_server import RelayServer, generate_identity, new_relay

Attachments = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Sent:
    """One submission as the source sent it."""

    message: str
    attachments: Attachments
    sealed_by: str


SENT = (
    Sent(
        "Я офицер, хочу уйти. Документы во вложении.",
        [("отчёт.pdf", os.urandom(50_000)), ("photo 1.jpg", os.urandom(200_000))],
        "server",
    ),
    Sent("Only a message, no files.\nSecond line.", [], "server"),
    Sent("Зашифровано в браузере.", [("доказательства.zip", os.urandom(1_000_000))], "browser"),
)


@dataclass
class Workflow:
    relay: RelayServer
    alice_key_path: Path
    alice_key: SigningKey
    alice_identity: Path
    bob_identity: Path


def tiprelay(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as a reviewer would."""
    result = subprocess.run(
        [TIPRELAY, *map(str, args)], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def start_two_reviewer_relay(base: Path) -> Workflow:
    """A relay for alice (identity + API key made with the CLI) and bob (identity only)."""
    base.mkdir(parents=True)
    alice_key_path = base / "alice-api.key"
    public_line = tiprelay("reviewer-key", "-o", alice_key_path).stdout.strip()
    relay = new_relay(base / "relay", api_key_text=public_line)
    bob_identity = base / "bob-identity.txt"
    bob_recipient = generate_identity(bob_identity)
    tiprelay("reviewer", "add", "bob", "--age-recipient", bob_recipient,
             "--keys-dir", relay.keys_dir)
    relay.start()
    alice_key = SigningKey.from_key_file_text(alice_key_path.read_text())
    return Workflow(relay, alice_key_path, alice_key, relay.identity_path, bob_identity)


def send_all(workflow: Workflow, sent: tuple[Sent, ...] = SENT) -> None:
    recipients = [recipient_of(workflow.alice_identity), recipient_of(workflow.bob_identity)]
    for item in sent:
        if item.sealed_by == "server":
            submit_form(workflow.relay.url, item.message, item.attachments)
        else:
            upload_sealed(
                workflow.relay.url,
                browser_sealed_submission(item.message, item.attachments, recipients),
            )


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflow]:
    flow = start_two_reviewer_relay(tmp_path_factory.mktemp("workflow") / "w")
    try:
        send_all(flow)
        yield flow
    finally:
        flow.relay.stop()


@pytest.fixture(scope="module")
def bundle(workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle pulled once with the real CLI (stdout is not a terminal: no progress bar)."""
    bundle_dir = tmp_path_factory.mktemp("bundle") / "usb" / "bundle"
    result = tiprelay("pull", "--server", workflow.relay.url, "--key", workflow.alice_key_path,
                      "-o", bundle_dir)
    assert "3 new submission(s)" in result.stdout
    assert "Pulling" not in result.stderr
    return bundle_dir


def read_folder(folder: Path) -> tuple[str, Attachments]:
    message = (folder / "message.txt").read_text(encoding="utf-8")
    files = sorted((path.name, path.read_bytes()) for path in (folder / "files").iterdir())
    return message, files


def decrypted_contents(out_dir: Path) -> dict[str, tuple[str, Attachments, str]]:
    """message -> (message, sorted attachments, sealed_by) for every output folder."""
    found = {}
    for folder in sorted(out_dir.iterdir()):
        message, files = read_folder(folder)
        sealed_by = json.loads((folder / "submission.json").read_text())["sealed_by"]
        found[message] = (message, files, sealed_by)
    return found


def expected_contents() -> dict[str, tuple[str, Attachments, str]]:
    return {s.message: (s.message, sorted(s.attachments), s.sealed_by) for s in SENT}


def test_bundle_holds_every_submission_with_a_verified_manifest(
    workflow: Workflow, bundle: Path
) -> None:
    entries = read_manifest(bundle)
    assert len(entries) == 3
    assert sorted(entries) == sorted(list_ids(workflow.relay.url, workflow.alice_key))
    for info in entries.values():
        path = bundle / info.file_name
        assert path.stat().st_size == info.size
        assert file_sha256(path) == info.sha256
    assert sorted(e.sealed_by for e in entries.values()) == ["browser", "server", "server"]
    assert not list(bundle.glob("*.part"))


def test_decrypt_gives_exactly_what_was_sent_to_each_reviewer_alone(
    workflow: Workflow, bundle: Path, tmp_path: Path
) -> None:
    for identity in (workflow.alice_identity, workflow.bob_identity):
        out_dir = tmp_path / identity.stem
        result = tiprelay("decrypt", "-i", identity, bundle, "-o", out_dir)
        assert decrypted_contents(out_dir) == expected_contents()
        entries = read_manifest(bundle)
        for info in entries.values():
            assert (out_dir / f"{info.day}-{info.id}").is_dir()
            row = next(line for line in result.stdout.splitlines() if line.startswith(info.id))
            assert info.day in row and info.sealed_by in row and "decrypted" in row
        server_sealed = [i.id for i in entries.values() if i.sealed_by == "server"]
        warnings = [line for line in result.stdout.splitlines() if "sealed by the server" in line]
        assert sorted(line.split()[1] for line in warnings) == sorted(server_sealed)
        assert "3 of 3 submission(s) readable" in result.stdout


def test_decrypting_again_skips_what_is_already_decrypted(
    workflow: Workflow, bundle: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    tiprelay("decrypt", "-i", workflow.alice_identity, bundle, "-o", out_dir)
    marker = next(out_dir.iterdir()) / "message.txt"
    mtime = marker.stat().st_mtime_ns
    again = tiprelay("decrypt", "-i", workflow.alice_identity, bundle, "-o", out_dir)
    assert again.stdout.count("already decrypted") == 3
    assert marker.stat().st_mtime_ns == mtime


def test_stock_age_and_tar_read_a_bundle_file(workflow: Workflow, bundle: Path,
                                              tmp_path: Path) -> None:
    info = next(i for i in read_manifest(bundle).values() if i.sealed_by == "browser")
    plaintext = subprocess.run(
        ["age", "-d", "-i", str(workflow.bob_identity), str(bundle / info.file_name)],
        check=True, capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=plaintext, check=True)
    assert (tmp_path / "message.txt").read_text() == SENT[2].message
    assert (tmp_path / "files" / "доказательства.zip").read_bytes() == SENT[2].attachments[0][1]


def test_a_flipped_byte_is_reported_for_that_submission_only(
    workflow: Workflow, bundle: Path, tmp_path: Path
) -> None:
    damaged_bundle = tmp_path / "bundle"
    shutil.copytree(bundle, damaged_bundle)
    victim = max(read_manifest(bundle).values(), key=lambda info: info.size)
    path = damaged_bundle / victim.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    out_dir = tmp_path / "out"
    result = tiprelay("decrypt", "-i", workflow.alice_identity, damaged_bundle, "-o", out_dir,
                      check=False)
    assert result.returncode == 1
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    damaged = [line for line in warnings if "damaged" in line]
    assert len(damaged) == 1 and victim.id in damaged[0]
    assert "does not match its SHA-256" in damaged[0]
    assert "2 of 3 submission(s) readable" in result.stdout
    folders = sorted(p.name for p in out_dir.iterdir())
    assert len(folders) == 2 and not any(victim.id in name for name in folders)


def test_pull_adds_only_new_submissions_and_delete_removes_only_verified_ones(
    tmp_path: Path,
) -> None:
    flow = start_two_reviewer_relay(tmp_path / "w")
    try:
        send_all(flow, SENT[:2])
        bundle_dir = tmp_path / "bundle"
        pull = ("pull", "--server", flow.relay.url, "--key", flow.alice_key_path, "-o", bundle_dir)
        assert "2 new" in tiprelay(*pull).stdout
        send_all(flow, SENT[2:])
        second = tiprelay(*pull).stdout
        assert "1 new" in second and "2 already there" in second
        assert len(read_manifest(bundle_dir)) == 3

        # A bundle copy damaged after the pull is not verified: it stays on the relay.
        entries = read_manifest(bundle_dir)
        damaged = sorted(entries)[0]
        with (bundle_dir / f"{damaged}.age").open("r+b") as handle:
            handle.seek(100)
            byte = handle.read(1)
            handle.seek(100)
            handle.write(bytes([byte[0] ^ 0xFF]))
        deleting = tiprelay(*pull, "--delete", check=False)
        assert deleting.returncode == 1
        assert f"{damaged} not deleted" in deleting.stderr
        assert list_ids(flow.relay.url, flow.alice_key) == [damaged]
    finally:
        flow.relay.stop()


class _StopServerMidway:
    """Progress hook that kills the relay (SIGKILL) once enough bytes have arrived."""

    def __init__(self, relay: RelayServer, after_bytes: int) -> None:
        self.relay = relay
        self.after_bytes = after_bytes
        self.received = 0

    def begin(self, total_bytes: int) -> None:
        pass

    def advance(self, received_bytes: int) -> None:
        self.received += received_bytes
        if self.received >= self.after_bytes and self.relay.proc is not None:
            self.relay.kill()


@pytest.mark.slow
def test_an_interrupted_pull_resumes_and_completes(tmp_path: Path) -> None:
    flow = start_two_reviewer_relay(tmp_path / "w")
    big = Sent("большой файл", [("video.mp4", os.urandom(24 * 1024 * 1024))], "browser")
    try:
        send_all(flow, (*SENT[:2], big))
        bundle_dir = tmp_path / "bundle"
        stopper = _StopServerMidway(flow.relay, after_bytes=2 * 1024 * 1024)
        with pytest.raises(PullError, match="Run the same command again"):
            asyncio.run(pull_bundle(flow.relay.url, flow.alice_key, bundle_dir,
                                    progress=stopper, retry_delays=()))
        assert flow.relay.proc is not None and flow.relay.proc.poll() is not None
        (part,) = bundle_dir.glob("*.part")
        partial_size = part.stat().st_size
        assert 0 < partial_size < 24 * 1024 * 1024

        flow.relay.start()
        # page_size=1: the client walks the listing page by page too.
        report = asyncio.run(pull_bundle(flow.relay.url, flow.alice_key, bundle_dir, page_size=1))
        assert report.listed == 3
        big_id = part.name.removesuffix(".age.part")
        assert report.resumed_from == {big_id: partial_size}
        assert big_id in report.downloaded and not report.failed
        assert not list(bundle_dir.glob("*.part"))
        assert len(read_manifest(bundle_dir)) == 3

        out_dir = tmp_path / "out"
        tiprelay("decrypt", "-i", flow.bob_identity, bundle_dir, "-o", out_dir)
        found = decrypted_contents(out_dir)
        assert found[big.message][1] == big.attachments
    finally:
        flow.relay.stop()


def test_pull_goes_through_a_socks5h_proxy_without_resolving_names(
    workflow: Workflow, tmp_path: Path
) -> None:
    with Socks5Proxy(target_port=workflow.relay.port) as proxy:
        bundle_dir = tmp_path / "bundle"
        # relay.invalid cannot resolve locally: only the proxy can "reach" it.
        result = tiprelay(
            "pull", "--server", f"http://relay.invalid:{workflow.relay.port}",
            "--key", workflow.alice_key_path, "-o", bundle_dir,
            "--proxy", f"socks5h://127.0.0.1:{proxy.port}",
        )
    assert "3 new submission(s)" in result.stdout
    assert proxy.requested and all(
        request == ("name", "relay.invalid", workflow.relay.port) for request in proxy.requested
    )
    assert len(read_manifest(bundle_dir)) == 3


def test_pull_with_an_unlisted_key_fails_clearly_and_writes_no_bundle_entries(
    workflow: Workflow, tmp_path: Path
) -> None:
    key_path = tmp_path / "stranger.key"
    tiprelay("reviewer-key", "-o", key_path)
    bundle_dir = tmp_path / "bundle"
    result = tiprelay("pull", "--server", workflow.relay.url, "--key", key_path,
                      "-o", bundle_dir, check=False)
    assert result.returncode == 1
    assert "refused this key" in result.stderr
    assert not (bundle_dir / MANIFEST_NAME).exists()


def test_pull_shows_a_progress_bar_on_a_terminal_only(workflow: Workflow, tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with spawned(
            [TIPRELAY, "pull", "--server", workflow.relay.url, "--key", workflow.alice_key_path,
             "-o", tmp_path / "bundle"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        ) as process:
            os.close(slave)
            slave = -1
            terminal = bytearray()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if not select.select([master], [], [], 1)[0]:
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                terminal += data
            stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert process.returncode == 0
    assert b"Pulling" in terminal and b"100%" in terminal
    assert b"Pulling" not in stdout and b"3 new submission(s)" in stdout


def test_a_relay_that_does_not_answer_is_retried_then_reported(tmp_path: Path) -> None:
    from tests.support_server import free_port

    notices: list[str] = []
    with pytest.raises(PullError, match="Run the same command again"):
        asyncio.run(pull_bundle(f"http://127.0.0.1:{free_port()}", SigningKey.generate(),
                                tmp_path / "bundle", retry_delays=(0.01, 0.01),
                                on_retry=notices.append))
    assert len(notices) == 2 and all("retrying in 0.01 s" in notice for notice in notices)


def test_demo_pull_and_decrypt_give_back_three_submissions(tmp_path: Path) -> None:
    """The issue's walk-through: `tiprelay demo`, three submissions, pull, decrypt."""
    import signal
    import urllib.request

    from tests.support_server import free_port

    demo_dir, port = tmp_path / "demo", free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "demo.log").open("wb") as log:
        demo = popen([TIPRELAY, "demo", "--dir", demo_dir, "--port", str(port)],
                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=2):
                        break
                except OSError:
                    assert demo.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            recipient = recipient_of(demo_dir / "identity.txt")
            for item in SENT:
                if item.sealed_by == "server":
                    submit_form(url, item.message, item.attachments)
                else:
                    upload_sealed(url, browser_sealed_submission(item.message, item.attachments,
                                                                 [recipient]))
            tiprelay("pull", "--server", url, "--key", demo_dir / "reviewer.key",
                     "-o", tmp_path / "bundle")
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=20)
            finally:
                kill_process(demo)
    tiprelay("decrypt", "-i", demo_dir / "identity.txt", tmp_path / "bundle",
             "-o", tmp_path / "out")
    assert decrypted_contents(tmp_path / "out") == expected_contents()


def test_pull_refuses_a_proxy_that_could_leak_names_and_an_onion_without_tor(
    tmp_path: Path,
) -> None:
    key_path = tmp_path / "api.key"
    tiprelay("reviewer-key", "-o", key_path)
    http_proxy = tiprelay("pull", "--server", "http://relay.example", "--key", key_path,
                          "-o", tmp_path / "b", "--proxy", "http://127.0.0.1:8118", check=False)
    assert http_proxy.returncode == 1 and "use socks5h://HOST:PORT" in http_proxy.stderr
    onion = tiprelay("pull", "--server", "http://" + "a" * 56 + ".onion", "--key", key_path,
                     "-o", tmp_path / "b", check=False)
    assert onion.returncode == 1 and "--proxy socks5h://127.0.0.1:9050" in onion.stderr
