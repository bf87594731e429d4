"""The reviewer API: list, download and delete stored ciphertexts (signed requests only).

    GET    /api/v1/submissions?after=<id>&limit=<n>   {"submissions": [...], "next": <id>|null}
    GET    /api/v1/submissions/{id}                   the age file; HTTP Range supported
    DELETE /api/v1/submissions/{id}                   204, or 404 if there is none

Every route checks the signature first (``reviewer_auth``), before looking at
the id, so that an unauthenticated caller learns nothing about which ids exist.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import BinaryIO

from aiohttp import hdrs, web

from relay.digits import parse_ascii_decimal
from relay.log import get_logger
from relay.server.appkeys import STORE
from relay.server.reviewer_auth import (
    NONCE_MEMORY,
    REVIEWER,
    NonceMemory,
    require_reviewer_signature,
)

SUBMISSIONS_PATH = "/api/v1/submissions"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DOWNLOAD_CHUNK_BYTES = 256 * 1024
_SUBMISSION_ID = re.compile(r"[0-9a-f]{32}")

_log = get_logger("relay.server.reviewer_api")


def setup_reviewer_api(app: web.Application) -> None:
    """Add the reviewer API routes and the replay memory they share to ``app``."""
    app[NONCE_MEMORY] = NonceMemory()
    app.router.add_get(SUBMISSIONS_PATH, list_submissions, allow_head=False)
    app.router.add_get(SUBMISSIONS_PATH + "/{id}", download_submission, allow_head=False)
    app.router.add_delete(SUBMISSIONS_PATH + "/{id}", delete_submission)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@require_reviewer_signature
async def list_submissions(request: web.Request) -> web.StreamResponse:
    """One page of stored submissions, oldest id order, after the ``after`` id."""
    after = request.query.get("after") or None
    if after is not None and not _SUBMISSION_ID.fullmatch(after):
        return _json_error(400, "after must be a submission id (32 hex digits)")
    limit_text = request.query.get("limit", str(DEFAULT_PAGE_SIZE))
    limit = parse_ascii_decimal(limit_text, max_digits=len(str(MAX_PAGE_SIZE)))
    if limit is None or not 1 <= limit <= MAX_PAGE_SIZE:
        return _json_error(400, f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    store = request.app[STORE]
    records = await asyncio.to_thread(store.list, after, limit)
    page = [
        {
            "id": record.id,
            "day": record.day,
            "size": record.size,
            "sha256": record.sha256,
            "sealed_by": record.sealed_by,
        }
        for record in records
    ]
    next_after = records[-1].id if len(records) == limit else None
    return web.json_response(
        {"submissions": page, "next": next_after}, headers={"Cache-Control": "no-store"}
    )


@require_reviewer_signature
async def download_submission(request: web.Request) -> web.StreamResponse:
    """The stored age file, streamed; ``Range`` lets an interrupted download resume.

    Read through the store, which opens blobs with O_NOATIME: a download must
    not stamp the time of day into the file's access time.
    """
    submission_id = request.match_info["id"]
    if not _SUBMISSION_ID.fullmatch(submission_id):
        return _json_error(404, "no such submission")
    store = request.app[STORE]
    try:
        blob = await asyncio.to_thread(store.open_blob, submission_id)
    except FileNotFoundError:
        return _json_error(404, "no such submission")
    try:
        return await _stream_blob(request, submission_id, blob)
    finally:
        await asyncio.to_thread(blob.close)


async def _stream_blob(
    request: web.Request, submission_id: str, blob: BinaryIO
) -> web.StreamResponse:
    size = os.fstat(blob.fileno()).st_size
    wanted = _requested_range(request, size)
    if wanted is None:
        return web.Response(
            status=416, headers={"Content-Range": f"bytes */{size}", "Cache-Control": "no-store"}
        )
    start, stop = wanted
    partial = (start, stop) != (0, size)
    response = web.StreamResponse(
        status=206 if partial else 200,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{submission_id}.age"',
            "Cache-Control": "no-store",
            "Accept-Ranges": "bytes",
        },
    )
    response.content_length = stop - start
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    await response.prepare(request)
    await asyncio.to_thread(blob.seek, start)
    remaining = stop - start
    while remaining > 0:
        chunk = await asyncio.to_thread(blob.read, min(DOWNLOAD_CHUNK_BYTES, remaining))
        if not chunk:  # shorter than it was a moment ago: never for a committed blob
            break
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response


def _requested_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """(start, stop) of the bytes to send; None when the range cannot be satisfied.

    One range of the forms ``bytes=a-``, ``bytes=a-b`` and ``bytes=-n``; a
    Range header in any other form is ignored (the whole file, as RFC 9110 allows).
    """
    if hdrs.RANGE not in request.headers:
        return 0, size
    try:
        wanted = request.http_range
    except ValueError:
        return 0, size
    if wanted.start is not None and wanted.start >= size:
        return None
    start, stop, _step = wanted.indices(size)
    return (start, stop) if start < stop else None


@require_reviewer_signature
async def delete_submission(request: web.Request) -> web.StreamResponse:
    """Remove a stored submission for good (the reviewer has it safely)."""
    submission_id = request.match_info["id"]
    if not _SUBMISSION_ID.fullmatch(submission_id):
        return _json_error(404, "no such submission")
    deleted = await asyncio.to_thread(request.app[STORE].delete, submission_id)
    if not deleted:
        return _json_error(404, "no such submission")
    _log.info("submission_deleted_by_reviewer", reviewer=request[REVIEWER].name)
    return web.Response(status=204)
