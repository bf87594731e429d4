"""Helpers for the reviewer-side tests: make submissions over real HTTP, send signed requests.

Everything talks to a real ``tiprelay serve`` (tests/support_server.py) over
loopback with the standard library's ``http.client``, so a test controls every
byte of a request (to tamper with it) without any mock.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from relay import httpsig
from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey

TIPRELAY = str(Path(sys.executable).with_name("tiprelay"))


@dataclass(frozen=True)
class Answer:
    """An HTTP response, read whole."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> object:
        return json.loads(self.body)


def send(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """One request over a fresh connection, exactly as given."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()


def signed_headers(
    base_url: str,
    method: str,
    path: str,
    key: SigningKey,
    body: bytes = b"",
    *,
    created: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The signature headers the real client would send for this request."""
    return httpsig.sign_request(method, base_url + path, body, key, created=created, nonce=nonce)


def signed(
    base_url: str, method: str, path: str, key: SigningKey, body: bytes = b""
) -> Answer:
    """A correctly signed request."""
    return send(base_url, method, path, signed_headers(base_url, method, path, key, body), body)


def list_ids(base_url: str, key: SigningKey) -> list[str]:
    """Every submission id the relay lists (signed)."""
    answer = signed(base_url, "GET", "/api/v1/submissions?limit=1000", key)
    assert answer.status == 200, answer
    document = answer.json()
    assert isinstance(document, dict)
    return [entry["id"] for entry in document["submissions"]]


def submit_form(
    base_url: str, message: str, attachments: Sequence[tuple[str, bytes]] = ()
) -> None:
    """POST /submit as a browser without JavaScript would; it must be accepted."""
    answer = post_form(base_url, message, attachments)
    assert answer.status in (200, 303), (answer.status, answer.body[:500])


def post_form(
    base_url: str,
    message: str,
    attachments: Sequence[tuple[str, bytes]] = (),
    path: str = "/submit",
) -> Answer:
    """POST the form as a browser without JavaScript would (multipart/form-data)."""
    boundary = uuid.uuid4().hex
    body = io.BytesIO()

    def part(disposition: str, data: bytes, content_type: str | None = None) -> None:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n".encode())
        if content_type:
            body.write(f"Content-Type: {content_type}\r\n".encode())
        body.write(b"\r\n" + data + b"\r\n")

    part('name="message"', message.encode("utf-8"))
    for name, data in attachments:
        quoted = name.replace('"', "%22")
        part(f'name="attachment"; filename="{quoted}"', data, "application/octet-stream")
    body.write(f"--{boundary}--\r\n".encode())
    return send(
        base_url,
        "POST",
        path,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        body.getvalue(),
    )


def upload_sealed(base_url: str, ciphertext: bytes) -> None:
    """Upload an already encrypted submission with tus 1.0, as the browser does."""
    tus = {"Tus-Resumable": "1.0.0"}
    length = {"Upload-Length": str(len(ciphertext))}
    created = send(base_url, "POST", "/api/v1/uploads", {**tus, **length})
    assert created.status == 201, created
    location = created.headers["Location"]
    patched = send(
        base_url,
        "PATCH",
        location,
        {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        ciphertext,
    )
    assert patched.status == 204, (patched.status, patched.body[:500])


def browser_sealed_submission(
    message: str,
    attachments: Sequence[tuple[str, bytes]],
    recipients: Sequence[str],
) -> bytes:
    """A submission as the browser builds it: padded tar, age-encrypted to every reviewer."""
    archive = build_archive(message, attachments, language="ru", sealed_by="browser")
    return encrypt_bytes(archive, [X25519Recipient.parse(text) for text in recipients])


def recipient_of(identity_path: Path) -> str:
    """The ``age1...`` recipient of a stock age identity file."""
    result = subprocess.run(
        ["age-keygen", "-y", str(identity_path)], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def make_api_key(path: Path) -> tuple[SigningKey, str]:
    """Run ``tiprelay reviewer-key -o path``; the key and the public line it printed."""
    result = subprocess.run(
        [TIPRELAY, "reviewer-key", "-o", str(path)], check=True, capture_output=True, text=True
    )
    return SigningKey.from_key_file_text(path.read_text()), result.stdout.strip()


def random_nonce() -> str:
    return secrets.token_urlsafe(18)


class Socks5Proxy:
    """A minimal SOCKS5 proxy (CONNECT, no auth) on 127.0.0.1, in a thread.

    It records the destination each client asked for and connects every one
    of them to ``target_port`` on 127.0.0.1, standing in for Tor: a client that
    sends a *name* (socks5h) reaches the relay; one that resolved the name
    itself would have failed before asking.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.requested: list[tuple[str, str, int]] = []  # (address type, host, port)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> Socks5Proxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _version, count = await reader.readexactly(2)
            await reader.readexactly(count)
            writer.write(bytes([5, 0]))  # no authentication
            _version, _connect, _reserved, address_type = await reader.readexactly(4)
            if address_type == 3:
                length = (await reader.readexactly(1))[0]
                host, kind = (await reader.readexactly(length)).decode(), "name"
            elif address_type == 1:
                host, kind = ".".join(map(str, await reader.readexactly(4))), "ipv4"
            else:
                host, kind = (await reader.readexactly(16)).hex(), "ipv6"
            port = int.from_bytes(await reader.readexactly(2), "big")
            self.requested.append((kind, host, port))
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            writer.write(bytes([5, 0, 0, 1, 127, 0, 0, 1]) + port.to_bytes(2, "big"))

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()


def signed_with_fields(
    base_url: str,
    method: str,
    path: str,
    key: SigningKey,
    fields: dict[str, str],
    body: bytes = b"",
) -> Answer:
    """A signed request carrying header ``fields`` that the signature covers too."""
    headers = httpsig.sign_request(method, base_url + path, body, key, signed_fields=fields)
    return send(base_url, method, path, headers, body)
