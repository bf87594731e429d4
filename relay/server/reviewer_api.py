"""The reviewer API: list, download and delete stored ciphertexts (signed requests only).

    GET    /api/v1/submissions?after=<id>&limit=<n>   {"submissions": [...], "next": <id>|null}
    GET    /api/v1/submissions/{id}                   the age file; HTTP Range supported
    DELETE /api/v1/submissions/{id}                   204, or 404 if there is none

Every route checks the signature first (``reviewer_auth``), before looking at
the id, so that an unauthenticated caller learns nothing about which ids exist.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

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
    """The stored age file, streamed; ``Range`` lets an interrupted download resume."""
    submission_id = request.match_info["id"]
    if not _SUBMISSION_ID.fullmatch(submission_id):
        return _json_error(404, "no such submission")
    store = request.app[STORE]
    record = await asyncio.to_thread(store.get, submission_id)
    if record is None:
        return _json_error(404, "no such submission")
    path = store.blob_path(submission_id)
    if not await asyncio.to_thread(path.is_file):
        return _json_error(404, "no such submission")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{submission_id}.age"',
            "Cache-Control": "no-store",
        },
    )


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
