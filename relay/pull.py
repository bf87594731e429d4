"""Pull stored ciphertexts from a relay into a bundle folder, over signed requests.

``pull_bundle`` lists the relay's submissions, downloads each one the bundle
lacks into ``<id>.age.part`` (resuming a partial file with HTTP Range), checks
its size and SHA-256 against the listing, renames it to ``<id>.age`` and records
it in ``manifest.json`` (atomically, after every file, so an interrupted pull
keeps everything already verified). With ``delete=True`` it then deletes from
the relay exactly the submissions whose file on disk hashes to the listed
SHA-256, and nothing else.

Then it records the relay's recipient set (``recipients.json``: compared with
the pinned team by ``tiprelay reply``, never used) and brings the replies:
every filled reply slot (signed ``GET /api/v1/replies``, paged by the
``Reply-After`` header) whose ciphertext the bundle lacks is fetched into
``replies/<sha256>.age`` and checked against the listed size and SHA-256; the
manifest keeps every reply pulled and what each slot holds now (the hash a
reply written offline expects to replace). ``outbox_pending`` counts replies
written offline and not pushed yet.

A hostile or broken relay gets bounded cost: listings are validated and paged
with strictly increasing ids, downloads stop at the listed size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp_socks import (
    ProxyConnectionError,
    ProxyConnector,
    ProxyError,
    ProxyTimeoutError,
    ProxyType,
)
from yarl import URL

from relay import httpsig
from relay.crypto.signing import SigningKey
from relay.errors import TiprelayError
from relay.files import HASH_CHUNK_BYTES, file_sha256, fsync_directory
from relay.manifest import (
    REPLIES_DIR,
    ReplyInfo,
    ReplyState,
    SubmissionInfo,
    read_manifest,
    read_reply_state,
    write_file_atomically,
    write_manifest,
)
from relay.outbox import OUTBOX_DIR, entry_names
from relay.team import record_pulled_recipients

SUBMISSIONS_PATH = "/api/v1/submissions"
REPLIES_PATH = "/api/v1/replies"
REPLY_SLOT_PATH = "/api/v1/replies/slot"
RECIPIENTS_PATH = "/api/v1/recipients"
MAX_PULLED_REPLY_BYTES = 64 * 1024 * 1024
"""No relay stores a reply this large (``max_reply_bytes`` is 16 MiB by default)."""
PAGE_SIZE = 1000
MAX_PAGES = 10_000
MAX_LISTING_BYTES = 16 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 256 * 1024
PART_SUFFIX = ".part"
# Tor circuits are slow to build and may stall; these bound each wait, not the download.
CONNECT_TIMEOUT_SECONDS = 120
READ_TIMEOUT_SECONDS = 300
RETRY_DELAYS_SECONDS = (2.0, 10.0, 30.0)
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20})")
_T = TypeVar("_T")
_PROXY_ERRORS = (ProxyError, ProxyConnectionError, ProxyTimeoutError)


class PullError(TiprelayError):
    """The pull did not finish; run the same command again to resume it."""


class ServerRefusedKeyError(PullError):
    """The relay refused this key: ask the operator whether it is listed in keys/."""


class Progress(Protocol):
    """Where a pull reports its progress (a terminal bar, or nothing)."""

    def begin(self, total_bytes: int) -> None: ...

    def advance(self, received_bytes: int) -> None: ...


class _NoProgress:
    def begin(self, total_bytes: int) -> None:
        pass

    def advance(self, received_bytes: int) -> None:
        pass


@dataclass
class PullReport:
    """What a pull did: ids downloaded, already present, deleted, failed or kept (with why)."""

    listed: int = 0
    downloaded: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    kept_on_relay: dict[str, str] = field(default_factory=dict)
    resumed_from: dict[str, int] = field(default_factory=dict)
    received_bytes: int = 0
    replies_listed: int = 0
    replies_downloaded: int = 0
    replies_failed: dict[str, str] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)
    outbox_pending: int = 0


class _DownloadFailed(Exception):
    """One submission could not be fetched; the others go on."""


def proxy_connector(proxy_url: str) -> ProxyConnector:
    """A SOCKS5 connector that lets the proxy resolve names (Tor: ``socks5h://127.0.0.1:9050``)."""
    parts = urlsplit(proxy_url)
    if parts.scheme not in ("socks5h", "socks5") or not parts.hostname or parts.port is None:
        raise PullError(
            f"Unsupported proxy {proxy_url!r}: use socks5h://HOST:PORT "
            "(for Tor: socks5h://127.0.0.1:9050)."
        )
    # Remote name resolution always: a local DNS lookup of an onion or relay
    # name would leak it, so plain socks5:// is treated as socks5h:// too.
    return ProxyConnector(
        proxy_type=ProxyType.SOCKS5,
        host=parts.hostname,
        port=parts.port,
        username=parts.username,
        password=parts.password,
        rdns=True,
    )


class ReviewerClient:
    """Signed calls to one relay's reviewer API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server_url: str,
        key: SigningKey,
        page_size: int = PAGE_SIZE,
    ) -> None:
        base = URL(server_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise PullError(f"{server_url!r} is not an http:// or https:// URL.")
        self.session = session
        self.origin = f"{base.scheme}://{base.raw_authority}"
        self.key = key
        self.page_size = page_size

    def _url(self, path: str, query: str = "") -> str:
        return self.origin + path + (f"?{query}" if query else "")

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        url: str,
        extra_headers: dict[str, str] | None = None,
        *,
        signed_fields: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = httpsig.sign_request(method, url, body, self.key, signed_fields=signed_fields)
        headers.update(extra_headers or {})
        async with self.session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as response:
            if response.status == 401:
                raise ServerRefusedKeyError
            yield response

    async def list_submissions(self) -> list[SubmissionInfo]:
        """Every submission the relay holds, all pages."""
        result: list[SubmissionInfo] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            query = f"limit={self.page_size}" + (f"&after={after}" if after else "")
            async with self._request("GET", self._url(SUBMISSIONS_PATH, query)) as response:
                if response.status != 200:
                    raise PullError(f"The relay answered {response.status} to the listing.")
                raw = await _read_bounded(response, MAX_LISTING_BYTES)
            page, next_after = _parse_listing(raw)
            for info in page:
                if after is not None and info.id <= after:
                    raise PullError("The relay's listing is out of order; try again later.")
                after = info.id
            result.extend(page)
            if next_after is None:
                return result
            if next_after != after:
                raise PullError("The relay's listing is inconsistent; try again later.")
        raise PullError("The relay's listing does not end.")

    async def download(
        self, info: SubmissionInfo, part_path: Path, progress: Progress, report: PullReport
    ) -> None:
        """Fetch ``info`` into ``part_path``, resuming what is there; checks size and hash."""
        have = part_path.stat().st_size if part_path.exists() else 0
        if have > info.size:
            have = 0
        digest = hashlib.sha256()
        if have:
            _hash_prefix(part_path, have, digest)
            progress.advance(have)
        extra = {"Range": f"bytes={have}-"} if 0 < have < info.size else None
        if have < info.size or info.size == 0:
            url = self._url(f"{SUBMISSIONS_PATH}/{info.id}")
            async with self._request("GET", url, extra) as response:
                if response.status == 404:
                    raise _DownloadFailed("no longer on the relay")
                if response.status == 206 and extra is not None:
                    _check_content_range(response.headers.get("Content-Range", ""), have, info)
                    report.resumed_from[info.id] = have
                elif response.status == 200:
                    have, digest = 0, hashlib.sha256()
                else:
                    raise _DownloadFailed(f"the relay answered {response.status}")
                await _receive(response, part_path, have, info.size, digest, progress, report)
        if part_path.stat().st_size != info.size or digest.hexdigest() != info.sha256:
            part_path.unlink()
            raise _DownloadFailed("the download does not match the relay's SHA-256 (discarded)")

    async def recipients(self) -> list[str]:
        """The recipient set the relay gives browsers (to compare with the pin)."""
        async with self.session.get(self._url(RECIPIENTS_PATH), allow_redirects=False) as response:
            if response.status != 200:
                raise PullError(f"The relay answered {response.status} to the recipient list.")
            raw = await _read_bounded(response, MAX_LISTING_BYTES)
        try:
            found = json.loads(raw)["recipients"]
            if not isinstance(found, list) or not all(isinstance(r, str) for r in found):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise PullError("The relay's recipient list is malformed.") from None
        return [str(r) for r in found]

    async def list_replies(self) -> list[ReplyInfo]:
        """Every filled reply slot, all pages, in tag order."""
        result: list[ReplyInfo] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            fields = {"reply-after": after} if after else None
            url = self._url(REPLIES_PATH, f"limit={self.page_size}")
            async with self._request("GET", url, signed_fields=fields) as response:
                if response.status != 200:
                    raise PullError(f"The relay answered {response.status} to the reply listing.")
                raw = await _read_bounded(response, MAX_LISTING_BYTES)
            try:
                document = json.loads(raw)
                page = [ReplyInfo.from_json(entry) for entry in document["replies"]]
                next_after = document.get("next")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise PullError(f"The relay's reply listing is malformed ({exc}).") from None
            for info in page:
                if after is not None and info.tag <= after:
                    raise PullError("The relay's reply listing is out of order; try again later.")
                after = info.tag
            result.extend(page)
            if next_after is None:
                return result
            if next_after != after:
                raise PullError("The relay's reply listing is inconsistent; try again later.")
        raise PullError("The relay's reply listing does not end.")

    async def fetch_reply(self, tag: str, limit: int) -> bytes | None:
        """The age file in the slot ``tag`` (at most ``limit`` bytes), or None if empty."""
        async with self._request(
            "GET", self._url(REPLY_SLOT_PATH), signed_fields={"reply-slot": tag}
        ) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise _DownloadFailed(f"the relay answered {response.status}")
            return await _read_bounded(
                response, limit, _DownloadFailed("the relay sent more bytes than listed")
            )

    async def put_reply(
        self, tag: str, expects: str, delete_token_hash: str, ciphertext: bytes
    ) -> tuple[int, bytes]:
        """PUT a reply into its slot by compare-and-swap; (status, body)."""
        fields = {
            "reply-slot": tag,
            "reply-expects": expects,
            "reply-delete-token-hash": delete_token_hash,
        }
        async with self._request(
            "PUT", self._url(REPLY_SLOT_PATH), signed_fields=fields, body=ciphertext
        ) as response:
            return response.status, await _read_bounded(response, MAX_LISTING_BYTES)

    async def delete(self, submission_id: str) -> bool:
        """Delete one submission on the relay; whether it was there."""
        url = self._url(f"{SUBMISSIONS_PATH}/{submission_id}")
        async with self._request("DELETE", url) as response:
            if response.status in (204, 404):
                return response.status == 204
            raise PullError(f"The relay answered {response.status} to a delete.")


async def _read_bounded(
    response: aiohttp.ClientResponse, limit: int, too_large: Exception | None = None
) -> bytes:
    """The whole body; ``too_large`` (by default a PullError) once it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_any():
        total += len(chunk)
        if total > limit:
            raise too_large or PullError("The relay's listing is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_listing(raw: bytes) -> tuple[list[SubmissionInfo], str | None]:
    try:
        document = json.loads(raw)
        entries = document["submissions"]
        next_after = document.get("next")
        if not isinstance(entries, list) or not (next_after is None or isinstance(next_after, str)):
            raise ValueError("malformed listing")
        return [SubmissionInfo.from_json(entry) for entry in entries], next_after
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise PullError(f"The relay's listing is malformed ({exc}).") from None


def _check_content_range(value: str, start: int, info: SubmissionInfo) -> None:
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if (
        match is None
        or int(match[1]) != start
        or int(match[2]) != info.size - 1
        or int(match[3]) != info.size
    ):
        raise _DownloadFailed("the relay answered the resume request with the wrong range")


def _hash_prefix(path: Path, length: int, digest: hashlib._Hash) -> None:
    with path.open("rb") as existing:
        remaining = length
        while remaining:
            chunk = existing.read(min(HASH_CHUNK_BYTES, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)


async def _receive(
    response: aiohttp.ClientResponse,
    part_path: Path,
    offset: int,
    size: int,
    digest: hashlib._Hash,
    progress: Progress,
    report: PullReport,
) -> None:
    """Append the body to ``part_path`` from ``offset``, never past ``size``; fsync."""
    # 0600: ciphertext is not secret, but nothing in a bundle concerns other users.
    descriptor = os.open(part_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "wb") as part:
        part.truncate(offset)
        part.seek(offset)
        written = offset
        try:
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                if written + len(chunk) > size:
                    raise _DownloadFailed("the relay sent more bytes than listed")
                part.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                report.received_bytes += len(chunk)
                progress.advance(len(chunk))
        finally:
            # What arrived stays on disk for the next attempt to resume from.
            part.flush()
            os.fsync(part.fileno())


def _verified_on_disk(bundle_dir: Path, info: SubmissionInfo) -> bool:
    path = bundle_dir / info.file_name
    return path.is_file() and path.stat().st_size == info.size and file_sha256(path) == info.sha256


def client_session(proxy: str | None, *, auto_decompress: bool = False) -> aiohttp.ClientSession:
    """A session to a relay: through ``proxy`` if given, no cookies, no environment proxies."""
    connector = proxy_connector(proxy) if proxy else None
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS
    )
    # No cookies, no environment proxies (HTTP_PROXY would bypass --proxy silently).
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=auto_decompress,
    )


async def pull_bundle(
    server_url: str,
    key: SigningKey,
    bundle_dir: Path,
    *,
    delete: bool = False,
    proxy: str | None = None,
    progress: Progress | None = None,
    retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
    page_size: int = PAGE_SIZE,
    on_retry: Callable[[str], None] | None = None,
) -> PullReport:
    """Bring ``bundle_dir`` up to date with the relay; see the module docstring.

    A failed connection is retried after each of ``retry_delays`` (``on_retry``
    hears why and how long it waits), then PullError; what arrived is kept.
    """
    retry = _Retry(retry_delays, on_retry)
    progress = progress or _NoProgress()
    bundle_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    manifest = read_manifest(bundle_dir)
    report = PullReport()
    async with client_session(proxy) as session:
        client = ReviewerClient(session, server_url, key, page_size)
        listing = await _with_retries(client.list_submissions, retry)
        report.listed = len(listing)
        todo = _adopt_present_files(bundle_dir, listing, manifest, report)
        progress.begin(sum(info.size for info in todo))
        for info in todo:
            await _download_with_retries(
                client, bundle_dir, info, manifest, progress, report, retry
            )
        if delete:
            await _delete_verified(client, bundle_dir, listing, manifest, report, retry)
        report.recipients = await _with_retries(client.recipients, retry)
        record_pulled_recipients(bundle_dir, report.recipients)
        await _pull_replies(client, bundle_dir, manifest, report, retry)
    report.outbox_pending = len(entry_names(bundle_dir, OUTBOX_DIR))
    return report


async def _pull_replies(
    client: ReviewerClient,
    bundle_dir: Path,
    manifest: dict[str, SubmissionInfo],
    report: PullReport,
    retry: _Retry,
) -> None:
    """Fetch the reply ciphertexts the bundle lacks; record what each slot holds now."""
    listing = await _with_retries(client.list_replies, retry)
    report.replies_listed = len(listing)
    state = read_reply_state(bundle_dir)
    fresh = ReplyState(pulled=dict(state.pulled))
    folder = bundle_dir / REPLIES_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    for info in listing:
        fresh.slots[info.tag] = info.sha256
        path = bundle_dir / info.file_name
        if info.sha256 in fresh.pulled and path.is_file():
            continue
        if info.size > MAX_PULLED_REPLY_BYTES:
            report.replies_failed[info.tag[:12]] = "larger than any reply"
            continue

        async def fetch(tag: str = info.tag, size: int = info.size) -> bytes | None:
            return await client.fetch_reply(tag, size)

        try:
            data = await _with_retries(fetch, retry)
        except _DownloadFailed as failure:
            report.replies_failed[info.tag[:12]] = str(failure)
            continue
        if data is None or hashlib.sha256(data).hexdigest() != info.sha256:
            # Replaced or deleted since the listing: the next pull sees the new state.
            report.replies_failed[info.tag[:12]] = "the slot changed while pulling; pull again"
            continue
        write_file_atomically(path, data)
        fresh.pulled[info.sha256] = info
        report.replies_downloaded += 1
    fsync_directory(folder)
    write_manifest(bundle_dir, manifest.values(), fresh)


async def _delete_verified(
    client: ReviewerClient,
    bundle_dir: Path,
    listing: list[SubmissionInfo],
    manifest: dict[str, SubmissionInfo],
    report: PullReport,
    retry: _Retry,
) -> None:
    """Delete on the relay what the bundle holds and re-hashes correctly right now."""
    for info in listing:
        if info.id not in manifest:
            continue  # not pulled (its failure is reported already)
        if not _verified_on_disk(bundle_dir, info):
            report.kept_on_relay[info.id] = (
                "the bundle's copy does not match the relay's SHA-256, so it stays on the relay"
            )
            continue

        async def delete_one(submission_id: str = info.id) -> bool:
            return await client.delete(submission_id)

        if await _with_retries(delete_one, retry):
            report.deleted.append(info.id)


def _adopt_present_files(
    bundle_dir: Path,
    listing: list[SubmissionInfo],
    manifest: dict[str, SubmissionInfo],
    report: PullReport,
) -> list[SubmissionInfo]:
    """Skip what the bundle has; record files renamed before a crash hit the manifest."""
    todo: list[SubmissionInfo] = []
    adopted = False
    for info in listing:
        path = bundle_dir / info.file_name
        if info.id in manifest and path.is_file():
            report.already_present.append(info.id)
        elif path.is_file() and _verified_on_disk(bundle_dir, info):
            manifest[info.id] = info
            report.already_present.append(info.id)
            adopted = True
        else:
            todo.append(info)
    if adopted:
        write_manifest(bundle_dir, manifest.values())
    return todo


async def _download_with_retries(
    client: ReviewerClient,
    bundle_dir: Path,
    info: SubmissionInfo,
    manifest: dict[str, SubmissionInfo],
    progress: Progress,
    report: PullReport,
    retry: _Retry,
) -> None:
    part_path = bundle_dir / (info.file_name + PART_SUFFIX)

    async def attempt() -> None:
        await client.download(info, part_path, progress, report)

    try:
        await _with_retries(attempt, retry)
    except _DownloadFailed as failure:
        report.failed[info.id] = str(failure)
        return
    final_path = bundle_dir / info.file_name
    os.replace(part_path, final_path)
    fsync_directory(bundle_dir)
    manifest[info.id] = info
    write_manifest(bundle_dir, manifest.values())
    report.downloaded.append(info.id)


@dataclass(frozen=True)
class _Retry:
    delays: tuple[float, ...]
    on_retry: Callable[[str], None] | None


async def _with_retries(operation: Callable[[], Awaitable[_T]], retry: _Retry) -> _T:
    """Run ``operation``, retrying network failures after each delay; then PullError."""
    for delay in (*retry.delays, None):
        try:
            return await operation()
        except (aiohttp.ClientError, TimeoutError, ConnectionError, *_PROXY_ERRORS) as exc:
            if delay is None:
                raise PullError(
                    f"The connection to the relay failed ({_describe(exc)}). "
                    "Run the same command again to resume; what arrived is kept."
                ) from None
            if retry.on_retry is not None:
                why = _describe(exc)
                retry.on_retry(f"The connection failed ({why}); retrying in {delay:g} s.")
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
