"""A real ``tiprelay serve`` process on 127.0.0.1 for tests (no mocks).

``running_relay(base_dir)`` writes a config file and a ``keys/`` folder with one
reviewer whose age identity is generated here with the stock ``age-keygen``
(kept in ``base_dir/reviewer-identity.txt`` for the test to decrypt with),
starts ``tiprelay serve --config ...`` as a subprocess on a free port, waits
until ``GET /healthz`` answers, yields a ``RelayServer`` and stops it afterwards
(SIGTERM, then SIGKILL).

    from tests.support_server import relay_server  # a pytest fixture

    def test_something(relay_server: RelayServer) -> None:
        urllib.request.urlopen(relay_server.url + "/healthz")

The server's stdout and stderr (its logs) go to ``log_path``; its ``TMPDIR``
is ``tmp_dir``, so that tests can check that nothing is left there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support_process import kill_process, popen

_TIPRELAY = Path(sys.executable).with_name("tiprelay")
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0

SettingValue = str | int | bool | float


PORTS_FIRST, PORTS_END = 20000, 32768
"""The ports tests hand to servers they start: below Linux's ephemeral range
(32768 up), which the kernel gives to outgoing connections and to bind(0), so
that nothing else takes one between the probe and the server's own bind."""
PORTS_PER_WORKER = 1500
_next_port: dict[str, int] = {}


def _worker_index() -> int:
    """0 for a plain pytest run; N for pytest-xdist's worker gwN."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0) if worker.startswith("gw") else 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server to bind.

    Each pytest-xdist worker takes its ports from its own slice of
    ``PORTS_FIRST``-``PORTS_END`` and goes round it, so two workers never hand
    out the same port, and one worker not the same port twice in a row.
    """
    index = _worker_index()
    first = PORTS_FIRST + (index * PORTS_PER_WORKER) % (PORTS_END - PORTS_FIRST)
    key = str(index)
    for _ in range(PORTS_PER_WORKER):
        port = _next_port.get(key, first)
        _next_port[key] = first + (port + 1 - first) % PORTS_PER_WORKER
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}..{first + PORTS_PER_WORKER - 1}")


def generate_identity(path: Path) -> str:
    """Write a stock age identity to ``path`` with ``age-keygen``; return its recipient."""
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    for line in path.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise AssertionError(f"age-keygen wrote no public key comment to {path}")


def write_reviewer_key_file(
    keys_dir: Path, name: str, age_recipient: str, api_key_text: str | None = None
) -> Path:
    """``keys/<name>.toml`` in the pinned format (public material only)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    lines = [f'name = "{name}"', f'age_recipient = "{age_recipient}"']
    if api_key_text is not None:
        lines.append(f'api_key = "{api_key_text}"')
    path = keys_dir / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass
class RelayServer:
    """One relay instance: its files, and the ``tiprelay serve`` process when running."""

    base_dir: Path
    settings: dict[str, SettingValue]
    env: dict[str, str]
    port: int = 0
    recipient: str = ""
    proc: subprocess.Popen[bytes] | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def keys_dir(self) -> Path:
        return self.base_dir / "keys"

    @property
    def tmp_dir(self) -> Path:
        """The server's TMPDIR."""
        return self.base_dir / "tmp"

    @property
    def config_path(self) -> Path:
        return self.base_dir / "relay.toml"

    @property
    def identity_path(self) -> Path:
        """The reviewer's (unprotected) age identity; stock ``age -d -i`` reads it."""
        return self.base_dir / "reviewer-identity.txt"

    @property
    def log_path(self) -> Path:
        """Everything the server wrote to stdout and stderr, across restarts."""
        return self.base_dir / "server.log"

    def prepare(self, api_key_text: str | None = None) -> None:
        """Create the identity, the reviewer key file, the folders and the config."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        if not self.identity_path.exists():
            self.recipient = generate_identity(self.identity_path)
            write_reviewer_key_file(self.keys_dir, "reviewer", self.recipient, api_key_text)
        if not self.port:
            self.port = free_port()
        self.write_config()

    def write_config(self) -> None:
        """(Re)write the config file from ``settings`` (call before ``start``)."""
        merged: dict[str, SettingValue] = {
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.data_dir),
            "keys_dir": str(self.keys_dir),
            "log_format": "json",
            "log_level": "info",
        }
        merged.update(self.settings)
        text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in merged.items())
        self.config_path.write_text(text)

    def start(self) -> None:
        """Start ``tiprelay serve`` and wait until it answers ``/healthz``."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the relay is already running")
        env = {key: value for key, value in os.environ.items() if not key.startswith("TIPRELAY_")}
        env["TMPDIR"] = str(self.tmp_dir)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        log_file = self.log_path.open("ab")
        self._log_file = log_file
        self.proc = popen(  # default signal dispositions, however the suite was started
            [str(_TIPRELAY), "serve", "--config", str(self.config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.base_dir,
        )
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"tiprelay serve exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            if self.is_healthy():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"tiprelay serve did not become healthy:\n{self.log_text()}")

    def is_healthy(self) -> bool:
        """Whether ``GET /healthz`` answers 200 right now."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                kill_process(self.proc)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.proc is not None:
            kill_process(self.proc)
        self._close_log()

    def reload_keys(self) -> None:
        """Send SIGHUP: the relay reloads ``keys/``."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def _close_log(self) -> None:
        log_file = self._log_file
        self._log_file = None
        if log_file is not None:
            with contextlib.suppress(OSError):
                log_file.close()  # type: ignore[attr-defined]

    def log_text(self) -> str:
        """The server's output so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def blob_paths(self) -> list[Path]:
        """Every file under ``data_dir/blobs`` (stored ciphertexts)."""
        blobs = self.data_dir / "blobs"
        return sorted(path for path in blobs.rglob("*") if path.is_file()) if blobs.exists() else []

    def decrypt_with_stock_age(self, blob: Path) -> bytes:
        """The plaintext of ``blob`` as the stock ``age -d -i`` produces it."""
        result = subprocess.run(
            ["age", "-d", "-i", str(self.identity_path), str(blob)],
            check=True,
            capture_output=True,
        )
        return result.stdout


def new_relay(
    base_dir: Path,
    settings: Mapping[str, SettingValue] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    api_key_text: str | None = None,
) -> RelayServer:
    """A prepared (not started) relay in ``base_dir``; ``settings`` go into its config."""
    if shutil.which("age-keygen") is None:
        raise RuntimeError("the stock age tools are missing: run scripts/setup")
    relay = RelayServer(base_dir=base_dir, settings=dict(settings or {}), env=dict(env or {}))
    relay.prepare(api_key_text)
    return relay


@contextlib.contextmanager
def running_relay(
    base_dir: Path,
    settings: Mapping[str, SettingValue] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    api_key_text: str | None = None,
) -> Iterator[RelayServer]:
    """A started relay in ``base_dir``, stopped when the block ends."""
    relay = new_relay(base_dir, settings, env=env, api_key_text=api_key_text)
    try:
        relay.start()
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def relay_server(tmp_path: Path) -> Iterator[RelayServer]:
    """A relay with default settings, one reviewer, in a fresh tmp dir."""
    with running_relay(tmp_path / "relay") as relay:
        yield relay
