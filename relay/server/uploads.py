"""Resumable uploads of browser-sealed submissions (tus 1.0.0) and the recipients API.

With JavaScript on, the source's browser builds the submission archive,
encrypts it with age to every reviewer and uploads the ciphertext here in
chunks, resuming after dropped connections (Tor circuits drop). The protocol
is tus 1.0.0 (https://tus.io/protocols/resumable-upload) with the creation,
termination and expiration extensions:

    OPTIONS /api/v1/uploads          capabilities
    POST    /api/v1/uploads          create (Upload-Length, capped by the size limit)
    HEAD    /api/v1/uploads/{id}     Upload-Offset / Upload-Length, to resume
    PATCH   /api/v1/uploads/{id}     append at Upload-Offset (streamed to disk)
    DELETE  /api/v1/uploads/{id}     give up, delete what was received

Partial uploads live in the store (a file in the data directory and a row in
SQLite), so they survive a restart; expired ones are purged by a background
task here. Which unfinished uploads may keep a slot and a claim on free disk,
and which give way to a new one, is ``relay.server.upload_claims``'s policy
(creating an upload costs a client nothing, so a claim alone holds little).
``Upload-Metadata`` is ignored: it is never parsed, stored or logged
(a client could put a file name in it).

When the last byte arrives the file is checked (``upload_check``): it must be
an age file for exactly this relay's reviewers. Then the same durable commit
as ``POST /submit`` (``store.finish_upload``, sealed_by "browser"), and the
final PATCH response carries the receipt in ``Tiprelay-Receipt``.

Also here: ``GET /api/v1/recipients``, the recipients the browser encrypts to
and their fingerprint (``relay.fingerprint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from aiohttp import ClientPayloadError, web

from relay.activity import activity
from relay.errors import StorageFullError, UploadNotFoundError, UploadOffsetError
from relay.log import get_logger
from relay.server.appkeys import CONFIG, KEYRING, STORE
from relay.server.upload_check import (
    ExpectedRecipients,
    UploadRejected,
    check_sealed_upload,
    expected_recipients,
)
from relay.server.upload_claims import UploadClaims
from relay.store import SubmissionRecord, UploadRecord

UPLOADS_PATH = "/api/v1/uploads"
RECIPIENTS_PATH = "/api/v1/recipients"
TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
RECEIPT_HEADER = "Tiprelay-Receipt"

APPEND_PIECE_BYTES = 1024 * 1024
"""How much of a PATCH body is gathered in memory before it is appended to disk."""
PURGE_INTERVAL_SECONDS = 15 * 60.0
"""At most this long between purges; more often when ``upload_start_seconds`` is short."""
COMPLETED_MEMORY = 256
"""Finished uploads whose receipt is remembered (in memory only), for a client whose
final PATCH response was lost: its HEAD then learns that the upload is complete."""

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")

log = get_logger(__name__)


class _UploadState:
    """What the app holds in memory about uploads: per-upload locks (only while a
    request holds one), recent receipts, and the activity of unfinished uploads."""

    def __init__(self, claims: UploadClaims) -> None:
        self.locks: dict[str, asyncio.Lock] = {}
        self.completed: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.claims = claims

    def is_busy(self, upload_id: str) -> bool:
        """Whether a request is working on the upload right now."""
        lock = self.locks.get(upload_id)
        return lock is not None and lock.locked()

    def lock_for(self, upload_id: str) -> asyncio.Lock:
        return self.locks.setdefault(upload_id, asyncio.Lock())

    def release(self, upload_id: str) -> None:
        """Forget the upload's lock once nobody holds it (call after releasing it),
        so that the table holds only uploads with a request in flight."""
        lock = self.locks.get(upload_id)
        if lock is not None and not lock.locked():
            del self.locks[upload_id]

    def remember_completed(self, upload_id: str, length: int, receipt: str) -> None:
        self.completed[upload_id] = (length, receipt)
        while len(self.completed) > COMPLETED_MEMORY:
            self.completed.popitem(last=False)


UPLOAD_STATE: web.AppKey[_UploadState] = web.AppKey("upload_state", _UploadState)


def setup_uploads(app: web.Application) -> None:
    """Add the tus endpoint, the recipients API and the purge task to ``app``."""
    config = app[CONFIG]
    app[UPLOAD_STATE] = _UploadState(
        UploadClaims(
            start_seconds=config.upload_start_seconds,
            idle_seconds=config.upload_idle_seconds,
            min_bytes_per_second=config.upload_min_bytes_per_second,
            disk_claim_bytes=config.upload_disk_claim_bytes,
        )
    )
    app.router.add_route("OPTIONS", UPLOADS_PATH, options_uploads)
    app.router.add_post(UPLOADS_PATH, create_upload)
    upload = app.router.add_resource(UPLOADS_PATH + "/{upload_id}")
    upload.add_route("OPTIONS", options_uploads)
    upload.add_route("HEAD", head_upload)
    upload.add_route("PATCH", patch_upload)
    upload.add_route("DELETE", delete_upload)
    app.router.add_get(RECIPIENTS_PATH, get_recipients, allow_head=False)
    app.cleanup_ctx.append(_purge_expired_uploads_periodically)


# --- helpers ------------------------------------------------------------------


def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def _refusal(status: int, message: str, **headers: str) -> web.Response:
    """An error for tus clients: a JSON body with a message written for people."""
    return web.json_response({"error": message}, status=status, headers=_tus_headers(**headers))


def _check_tus_version(request: web.Request) -> web.Response | None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        return _refusal(
            412, f"This endpoint speaks tus {TUS_VERSION} only.", **{"Tus-Version": TUS_VERSION}
        )
    return None


def _parse_non_negative(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


def _upload_id(request: web.Request) -> str | None:
    upload_id = request.match_info["upload_id"]
    return upload_id if _UPLOAD_ID.fullmatch(upload_id) else None


def _expiry_headers(record: UploadRecord) -> dict[str, str]:
    """Upload-Expires, from the record's hour ("YYYY-MM-DDTHH", UTC; no finer time is kept)."""
    try:
        expires = datetime.strptime(record.expires_day_hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return {}
    return {"Upload-Expires": format_datetime(expires, usegmt=True)}


def _free_bytes_after_reserve(request: web.Request) -> int:
    return request.app[STORE].free_bytes() - request.app[CONFIG].disk_reserve_bytes


async def _current_upload(request: web.Request, upload_id: str) -> UploadRecord | None:
    """The upload's record; None when there is none or it has expired (the store decides)."""
    return await asyncio.to_thread(request.app[STORE].get_upload, upload_id)


def _not_found() -> web.Response:
    return _refusal(404, "There is no such upload (it may have expired or been cancelled).")


def _expected_recipients(request: web.Request) -> ExpectedRecipients:
    return expected_recipients(request.app[KEYRING].usable())


# --- handlers -----------------------------------------------------------------


async def options_uploads(request: web.Request) -> web.Response:
    """The server's tus capabilities."""
    config = request.app[CONFIG]
    return web.Response(
        status=204,
        headers=_tus_headers(
            **{
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(config.max_submission_bytes),
            }
        ),
    )


STORAGE_FULL_MESSAGE = "The relay is running out of storage space; try again later."

_Handler = Callable[..., Awaitable[web.Response]]


def _refused_when_the_disk_is_full(handler: _Handler) -> _Handler:
    """A full disk met while writing is a 507, like one foreseen: never a 500.

    The upload keeps the offset it had; the client resumes once there is space.
    """

    @functools.wraps(handler)
    async def refusing(*args: object, **kwargs: object) -> web.Response:
        try:
            return await handler(*args, **kwargs)
        except StorageFullError:
            activity.count("upload_refused_disk_full")
            return _refusal(507, STORAGE_FULL_MESSAGE)

    return refusing


@_refused_when_the_disk_is_full
async def create_upload(request: web.Request) -> web.Response:
    """Creation extension: a new, empty upload of the announced length."""
    if (refused := _check_tus_version(request)) is not None:
        return refused
    if "Upload-Defer-Length" in request.headers:
        return _refusal(400, "Uploads of unknown length are not supported here.")
    length = _parse_non_negative(request.headers.get("Upload-Length"))
    if length is None:
        return _refusal(400, "The upload needs a valid Upload-Length header.")
    config = request.app[CONFIG]
    if length > config.max_submission_bytes:
        return _refusal(
            413,
            f"The upload is larger than this relay accepts ({config.max_submission_bytes} bytes).",
            **{"Tus-Max-Size": str(config.max_submission_bytes)},
        )
    if length == 0:
        return _refusal(400, "An empty upload cannot be an encrypted submission.")
    # Upload-Metadata is deliberately not read: nothing a client puts there is kept.
    store = request.app[STORE]
    state = request.app[UPLOAD_STATE]
    # Bounded cost: every unfinished upload holds a file and a row, so their
    # number is capped; but a claim that receives no bytes must not lock real
    # sources out, so it gives way to a new upload (see upload_claims).
    # Checked first, so that an upload refused for want of disk evicts nobody.
    if _free_bytes_after_reserve(request) < state.claims.reserved_bytes(state.is_busy) + length:
        return _refusal(507, STORAGE_FULL_MESSAGE)
    open_count = await asyncio.to_thread(store.open_upload_count)
    if open_count >= config.max_open_uploads:
        needed = open_count - config.max_open_uploads + 1
        if await _evict_for_new_upload(request.app, needed) < needed:
            activity.count("upload_refused_busy")
            return _refusal(503, "Too many uploads are in progress; try again in a few minutes.")
    record = await asyncio.to_thread(store.create_upload, length)
    state.claims.track(record.id, length, 0)
    activity.count("upload_created")
    return web.Response(
        status=201,
        headers=_tus_headers(
            Location=f"{UPLOADS_PATH}/{record.id}",
            **{"Upload-Offset": "0"},
            **_expiry_headers(record),
        ),
    )


async def head_upload(request: web.Request) -> web.Response:
    """Where an upload stands, so that a client can resume it."""
    if (refused := _check_tus_version(request)) is not None:
        return refused
    upload_id = _upload_id(request)
    if upload_id is None:
        return _not_found()
    completed = request.app[UPLOAD_STATE].completed.get(upload_id)
    if completed is not None:
        length, receipt = completed
        return _complete_response(200, length, receipt)
    record = await _current_upload(request, upload_id)
    if record is None:
        return _not_found()
    if record.offset == record.length:
        # Every byte arrived but the commit did not happen (the server crashed or
        # the commit failed after the last PATCH): commit now. Answering "complete"
        # without it would let the client report a submission that was never stored.
        return await _locked(request, upload_id, lambda: _complete(request, upload_id, 200))
    return web.Response(
        status=200,
        headers=_tus_headers(
            **{"Upload-Offset": str(record.offset), "Upload-Length": str(record.length)},
            **_expiry_headers(record),
        ),
    )


async def patch_upload(request: web.Request) -> web.Response:
    """Append the body at Upload-Offset; on the last byte, check and commit."""
    if (refused := _check_tus_version(request)) is not None:
        return refused
    if request.content_type != OFFSET_CONTENT_TYPE:
        return _refusal(415, f"PATCH bodies must be {OFFSET_CONTENT_TYPE}.")
    offset = _parse_non_negative(request.headers.get("Upload-Offset"))
    if offset is None:
        return _refusal(400, "The request needs a valid Upload-Offset header.")
    upload_id = _upload_id(request)
    if upload_id is None:
        return _not_found()
    return await _locked(request, upload_id, lambda: _patch_locked(request, upload_id, offset))


async def _locked(
    request: web.Request, upload_id: str, action: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """Run ``action`` while holding the upload's lock; 423 if another request holds it."""
    state = request.app[UPLOAD_STATE]
    lock = state.lock_for(upload_id)
    if lock.locked():
        # The previous PATCH (perhaps from a connection that dropped) is still
        # being written; tus clients retry 423 after a short wait.
        return _refusal(423, "This upload is busy with another request; retry shortly.")
    try:
        async with lock:
            return await action()
    finally:
        # Only now is the lock free: released inside the block, every request
        # (even for an id that does not exist) left an entry behind for good.
        state.release(upload_id)


@_refused_when_the_disk_is_full
async def _patch_locked(request: web.Request, upload_id: str, offset: int) -> web.Response:
    record = await _current_upload(request, upload_id)
    if record is None:
        return _not_found()
    if offset != record.offset:
        return _refusal(
            409,
            f"Upload-Offset {offset} does not match the server's offset {record.offset}.",
            **{"Upload-Offset": str(record.offset)},
        )
    remaining = record.length - record.offset
    declared = request.content_length
    if declared is not None and declared > remaining:
        return _refusal(413, "The body goes past the announced Upload-Length.")
    if _free_bytes_after_reserve(request) < (declared or remaining):
        return _refusal(507, STORAGE_FULL_MESSAGE)
    try:
        new_offset, overflow = await _receive_body(request, upload_id, offset, remaining)
    except UploadOffsetError as error:  # a concurrent writer won a race
        return _refusal(409, str(error), **{"Upload-Offset": str(error.expected)})
    except UploadNotFoundError:
        return _not_found()
    if overflow:
        # A client that sends more than it announced is broken or hostile: its
        # upload cannot be trusted, so nothing of it is kept.
        await asyncio.to_thread(request.app[STORE].delete_upload, upload_id)
        request.app[UPLOAD_STATE].claims.forget(upload_id)
        activity.count("upload_rejected")
        return _refusal(413, "The body goes past the announced Upload-Length; upload deleted.")
    if new_offset < record.length:
        return web.Response(
            status=204,
            headers=_tus_headers(**{"Upload-Offset": str(new_offset)}, **_expiry_headers(record)),
        )
    return await _complete(request, upload_id, 204)


async def _receive_body(
    request: web.Request, upload_id: str, offset: int, remaining: int
) -> tuple[int, bool]:
    """Stream the body to the upload file in pieces; keep whatever arrived if the
    connection breaks (tus resumes from there). Returns (new offset, overflowed)."""
    store = request.app[STORE]
    deadline = time.monotonic() + request.app[CONFIG].request_timeout_seconds
    pending = bytearray()
    received = 0
    overflow = False

    async def flush() -> None:
        nonlocal offset
        if pending:
            offset = await asyncio.to_thread(store.append_upload, upload_id, offset, bytes(pending))
            pending.clear()
            request.app[UPLOAD_STATE].claims.record_progress(upload_id, offset)

    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            while received < remaining:
                data = await request.content.read(min(APPEND_PIECE_BYTES, remaining - received))
                if not data:
                    break
                pending += data
                received += len(data)
                if len(pending) >= APPEND_PIECE_BYTES:
                    await flush()
            if received == remaining and not request.content.at_eof():
                overflow = bool(await request.content.read(1))
    except (TimeoutError, ConnectionError, OSError, ClientPayloadError):
        # The connection broke or stalled: keep what arrived, the client resumes.
        activity.count("upload_interrupted")
    finally:
        await asyncio.shield(flush())
    return offset, overflow


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic`` deadline on the event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


async def _complete(request: web.Request, upload_id: str, status: int) -> web.Response:
    """Check a fully received upload; commit it (receipt) or delete it (422)."""
    store = request.app[STORE]
    record = await _current_upload(request, upload_id)
    if record is None or record.offset != record.length:
        return _not_found()
    try:
        await asyncio.to_thread(
            check_sealed_upload, store.upload_path(upload_id), _expected_recipients(request)
        )
    except UploadRejected as rejected:
        await asyncio.to_thread(store.delete_upload, upload_id)
        request.app[UPLOAD_STATE].claims.forget(upload_id)
        activity.count("upload_rejected")
        return _refusal(422, rejected.message)
    submission = await asyncio.to_thread(store.finish_upload, upload_id, "browser")
    request.app[UPLOAD_STATE].claims.forget(upload_id)
    receipt = _receipt_for(submission)
    request.app[UPLOAD_STATE].remember_completed(upload_id, record.length, receipt)
    # No submission id here: with the log's time it would date the submission.
    activity.count("upload_stored_browser_sealed")
    return _complete_response(status, record.length, receipt)


def _complete_response(status: int, length: int, receipt: str) -> web.Response:
    return web.Response(
        status=status,
        headers=_tus_headers(
            **{"Upload-Offset": str(length), "Upload-Length": str(length)},
            **{RECEIPT_HEADER: receipt},
        ),
    )


def _receipt_for(submission: SubmissionRecord) -> str:
    """The receipt id for API clients: the submission's id. The page does not show it
    (as after POST /submit, nothing on the source's screen names the submission)."""
    return submission.id


async def delete_upload(request: web.Request) -> web.Response:
    """Termination extension: the client gives up; what was received is deleted."""
    if (refused := _check_tus_version(request)) is not None:
        return refused
    upload_id = _upload_id(request)
    if upload_id is None:
        return _not_found()
    return await _locked(request, upload_id, lambda: _delete_locked(request, upload_id))


async def _delete_locked(request: web.Request, upload_id: str) -> web.Response:
    if await _current_upload(request, upload_id) is None:
        return _not_found()
    await asyncio.to_thread(request.app[STORE].delete_upload, upload_id)
    request.app[UPLOAD_STATE].claims.forget(upload_id)
    activity.count("upload_terminated")
    return web.Response(status=204, headers=_tus_headers())


async def get_recipients(request: web.Request) -> web.Response:
    """The recipients a browser encrypts to, and the fingerprint of that set."""
    return web.json_response(
        request.app[KEYRING].recipients_document(),
        headers={"Cache-Control": "no-store"},
    )


async def _evict(app: web.Application, upload_id: str) -> bool:
    """Delete an unfinished upload no request is working on; whether one was deleted."""
    state = app[UPLOAD_STATE]
    lock = state.lock_for(upload_id)
    if lock.locked():
        return False
    try:
        async with lock:  # a PATCH arriving meanwhile gets 423, then 404
            deleted = await asyncio.to_thread(app[STORE].delete_upload, upload_id)
    finally:
        state.release(upload_id)
    state.claims.forget(upload_id)
    return deleted


async def _evict_for_new_upload(app: web.Application, needed: int) -> int:
    """Free up to ``needed`` slots from unstarted or paused uploads; how many were freed."""
    state = app[UPLOAD_STATE]
    freed = 0
    for upload_id in state.claims.eviction_order(state.is_busy):
        if freed >= needed:
            break
        if state.claims.may_evict(upload_id, state.is_busy) and await _evict(app, upload_id):
            freed += 1
            activity.count("upload_evicted_for_new")
    return freed


async def _tidy_uploads(app: web.Application) -> None:
    """Purge expired uploads, match the claims to the store, delete never-started ones."""
    store = app[STORE]
    state = app[UPLOAD_STATE]
    purged = await asyncio.to_thread(store.purge_expired_uploads)
    if purged:
        log.info("expired_uploads_purged", count=purged)
    state.claims.keep_only(await asyncio.to_thread(store.list_open_uploads))
    for upload_id in state.claims.never_started(state.is_busy):
        if await _evict(app, upload_id):
            # A daily total, not a log line: its time would date a source's attempt.
            activity.count("upload_never_started")


def _purge_interval(app: web.Application) -> float:
    return max(1.0, min(PURGE_INTERVAL_SECONDS, app[CONFIG].upload_start_seconds / 4))


async def _purge_expired_uploads_periodically(app: web.Application) -> AsyncIterator[None]:
    """Tidy unfinished uploads at start-up and then regularly (``_purge_interval``)."""

    async def purge_forever() -> None:
        while True:
            try:
                await _tidy_uploads(app)
            except Exception as error:  # keep purging later; never kill the server
                log.error("upload_purge_failed", error_type=type(error).__name__)
            await asyncio.sleep(_purge_interval(app))

    task = asyncio.create_task(purge_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

