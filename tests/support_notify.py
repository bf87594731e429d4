"""Real channels on 127.0.0.1 for the digest tests: an SMTP server and an HTTP endpoint.

``smtp_server()`` is aiosmtpd with AUTH (over plain text, as on 127.0.0.1
only), keeping every message it accepts; ``http_channel()`` is a threaded
stdlib HTTP server that Apprise's ``json://`` posts to, which answers 200,
answers 500 (``mode="fail"``) or holds the request until the test ends
(``mode="hang"``). Both stop when their block ends.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support_server import free_port

SMTP_USER = "relay"
SMTP_PASSWORD = "smtp-Pa55word-not-for-logs"
HTTP_PASSWORD = "json-Pa55word-not-for-logs"
HANG_LIMIT_SECONDS = 30.0


@dataclass
class SmtpServer:
    """What the SMTP server received: (envelope recipients, parsed message) per mail."""

    port: int
    messages: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def url(self, to: str = "olga@example.org") -> str:
        """The Apprise URL of this server, with its password."""
        return (
            f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.port}"
            f"?to={to}&from=relay@example.org"
        )

    def bodies(self) -> list[str]:
        """Each message's decoded text body."""
        return [str(message.get_content()) for _, message in self.messages]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.server.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 that accepts only ``SMTP_USER``/``SMTP_PASSWORD``."""
    server = SmtpServer(port=free_port())

    def authenticate(_s: Any, _session: Any, _e: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        _Handler(server),
        hostname="127.0.0.1",
        port=server.port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@dataclass
class HttpChannel:
    """What the HTTP endpoint received: each JSON payload, and how many requests came."""

    port: int
    mode: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "digest") -> str:
        """Apprise's json:// URL of this endpoint, with a password (basic auth)."""
        return f"json://relay:{HTTP_PASSWORD}@127.0.0.1:{self.port}/{path}"


@contextlib.contextmanager
def http_channel(mode: str = "ok") -> Iterator[HttpChannel]:
    """A threaded HTTP server on 127.0.0.1: ``ok`` (200), ``fail`` (500) or ``hang``."""
    channel = HttpChannel(port=free_port(), mode=mode)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with channel.lock:
                channel.requests += 1
            if channel.mode == "hang":
                channel.release.wait(HANG_LIMIT_SECONDS)
                return
            if channel.mode == "ok":
                with channel.lock:
                    channel.payloads.append(json.loads(body))
            self.send_response(200 if channel.mode == "ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", channel.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield channel
    finally:
        channel.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def write_channels_file(path: Path, entries: list[dict[str, object]], mode: int = 0o600) -> Path:
    """The channels secrets file: one [[channel]] table per entry."""
    lines: list[str] = []
    for entry in entries:
        lines.append("[[channel]]")
        for key, value in entry.items():
            shown = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
            lines.append(f"{key} = {shown}")
        lines.append("")
    path.write_text("\n".join(lines))
    path.chmod(mode)
    return path
