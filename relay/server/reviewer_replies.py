"""The reviewer API for replies: put a reply into a slot, list, fetch and delete slots.

Signed like every reviewer request (``reviewer_auth``). A slot's tag never
travels in a URL: it is in the ``Reply-Slot`` header, which the signature
must cover, as it must cover every other ``Reply-*`` header a route reads.

    GET    /api/v1/replies            [Reply-After: <tag>] [?limit=n]
           200 {"replies": [{"tag", "day", "size", "sha256"}...], "next": <tag>|null}
    GET    /api/v1/replies/slot       Reply-Slot: <tag>
           200 the age file | 404
    PUT    /api/v1/replies/slot       Reply-Slot, Reply-Expects: empty|<sha256>,
                                      Reply-Delete-Token-Hash: <sha256 of the token>
           body: the age file (streamed; at most max_reply_bytes)
           201 {"tag", "day", "size", "sha256"} | 409 the slot changed | 400 | 413
    DELETE /api/v1/replies/slot       Reply-Slot: <tag>
           204 | 404

A PUT is checked before anything is kept: the signature over its headers
before the body is read, the signed Content-Digest while the body streams to
tmp/, then the age header (one X25519 stanza per current reviewer plus exactly
one, the source's), then the compare-and-swap on the hash the slot holds.
No log line names the reviewer who put or deleted a reply, nor any tag.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from relay.activity import activity
from relay.digits import parse_ascii_decimal
from relay.errors import ReplySlotChangedError
from relay.log import get_logger
from relay.server.appkeys import CONFIG, KEYRING, STORE
from relay.server.reviewer_auth import (
    REVIEWER,
    SIGNED_BODY_DIGEST,
    require_reviewer_signature,
    require_reviewer_signature_streamed,
    unauthorized,
)
from relay.server.upload_check import UploadRejected, check_reply_file, expected_recipients
from relay.store import MAX_LIST_LIMIT, TemporaryBlob, is_valid_sha256, is_valid_tag

REPLIES_PATH = "/api/v1/replies"
SLOT_PATH = REPLIES_PATH + "/slot"
SLOT_HEADER = "reply-slot"
EXPECTS_HEADER = "reply-expects"
DELETE_TOKEN_HASH_HEADER = "reply-delete-token-hash"  # noqa: S105 (a header name)
AFTER_HEADER = "reply-after"
EXPECTS_EMPTY = "empty"
DEFAULT_PAGE_SIZE = 100
RECEIVE_CHUNK_BYTES = 64 * 1024
DOWNLOAD_CHUNK_BYTES = 256 * 1024
SLOT_CHANGED = (
    "The slot changed since your last pull (another reply was pushed to it, or it was "
    "deleted): pull, then reply again."
)

_log = get_logger("relay.server.reviewer_replies")


def setup_reviewer_replies(app: web.Application) -> None:
    """Add the reviewer's reply routes to ``app`` (after the reviewer API's nonce memory)."""
    app.router.add_get(REPLIES_PATH, list_replies, allow_head=False, name="reviewer_replies")
    app.router.add_get(SLOT_PATH, download_reply, allow_head=False, name="reviewer_reply_get")
    app.router.add_put(SLOT_PATH, put_reply, name="reviewer_reply_put")
    app.router.add_delete(SLOT_PATH, delete_reply, name="reviewer_reply_delete")


def _json_error(status: int, message: str, **extra: str) -> web.Response:
    return web.json_response(
        {"error": message, **extra}, status=status, headers={"Cache-Control": "no-store"}
    )


def _signed_header(request: web.Request, name: str) -> str | None:
    """A header's value, only if the signature covers it; None when absent."""
    if name not in request.headers:
        return None
    if name not in request[REVIEWER].covered_headers:
        raise web.HTTPBadRequest(
            text=f'{{"error": "the signature must cover the {name} header"}}',
            content_type="application/json",
        )
    return request.headers[name]


def _slot_tag(request: web.Request) -> str:
    tag = _signed_header(request, SLOT_HEADER)
    if tag is None or not is_valid_tag(tag):
        raise web.HTTPBadRequest(
            text='{"error": "Reply-Slot must be a slot tag: 64 lower-case hex digits"}',
            content_type="application/json",
        )
    return tag


@require_reviewer_signature
async def list_replies(request: web.Request) -> web.StreamResponse:
    """One page of filled slots in tag order, after the ``Reply-After`` tag."""
    after = _signed_header(request, AFTER_HEADER) or None
    if after is not None and not is_valid_tag(after):
        return _json_error(400, "Reply-After must be a slot tag (64 hex digits)")
    limit = parse_ascii_decimal(
        request.query.get("limit", str(DEFAULT_PAGE_SIZE)), max_digits=len(str(MAX_LIST_LIMIT))
    )
    if limit is None or not 1 <= limit <= MAX_LIST_LIMIT:
        return _json_error(400, f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
    slots = await asyncio.to_thread(request.app[STORE].list_replies, after, limit)
    page = [
        {"tag": slot.tag, "day": slot.day, "size": slot.size, "sha256": slot.sha256}
        for slot in slots
    ]
    next_after = slots[-1].tag if len(slots) == limit else None
    return web.json_response(
        {"replies": page, "next": next_after}, headers={"Cache-Control": "no-store"}
    )


@require_reviewer_signature
async def download_reply(request: web.Request) -> web.StreamResponse:
    """The age file in the slot (read with O_NOATIME), streamed."""
    return await stream_reply(request, _slot_tag(request))


async def stream_reply(request: web.Request, tag: str) -> web.StreamResponse:
    """Send the slot's age file, or 404; shared with the source's fetch."""
    try:
        blob = await asyncio.to_thread(request.app[STORE].open_reply, tag)
    except FileNotFoundError:
        return _json_error(404, "no such reply")
    try:
        size = os.fstat(blob.fileno()).st_size
        response = web.StreamResponse(
            headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
        )
        response.content_length = size
        await response.prepare(request)
        remaining = size
        while remaining > 0:
            chunk = await asyncio.to_thread(blob.read, min(DOWNLOAD_CHUNK_BYTES, remaining))
            if not chunk:
                break
            await response.write(chunk)
            remaining -= len(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(blob.close)


@require_reviewer_signature_streamed
async def put_reply(request: web.Request) -> web.StreamResponse:
    """Fill a slot by compare-and-swap with the streamed age file."""
    tag = _slot_tag(request)
    expects = _signed_header(request, EXPECTS_HEADER)
    token_hash = _signed_header(request, DELETE_TOKEN_HASH_HEADER)
    if expects is None or not (expects == EXPECTS_EMPTY or is_valid_sha256(expects)):
        return _json_error(
            400, "Reply-Expects must be 'empty' or the SHA-256 (hex) the slot holds now"
        )
    if token_hash is None or not is_valid_sha256(token_hash):
        return _json_error(400, "Reply-Delete-Token-Hash must be a SHA-256 in hex")
    config, store = request.app[CONFIG], request.app[STORE]
    limit = config.max_reply_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    # The same disk reserve as sources' submissions: a reply never eats into it.
    free = await asyncio.to_thread(store.free_bytes)
    if free - (request.content_length or limit) < config.disk_reserve_bytes:
        return _json_error(507, "The relay's disk is nearly full; tell its operator.")
    written = await asyncio.to_thread(store.reply_writer)
    try:
        refusal = await _receive(request, written, limit)
        if refusal is not None:
            return refusal
        path, _size, _sha256 = await asyncio.to_thread(written.finish)
        recipients = expected_recipients(request.app[KEYRING].usable())
        try:
            await asyncio.to_thread(check_reply_file, path, recipients)
        except UploadRejected as rejected:
            return _json_error(400, rejected.message)
        expected = None if expects == EXPECTS_EMPTY else expects
        try:
            slot = await asyncio.to_thread(store.put_reply, tag, expected, token_hash, written)
        except ReplySlotChangedError:
            return _json_error(409, SLOT_CHANGED, problem="slot_changed")
    finally:
        await asyncio.to_thread(written.abort)
    activity.count("reply_stored")  # a daily total: a timestamped line would date the reply
    return web.json_response(
        {"tag": slot.tag, "day": slot.day, "size": slot.size, "sha256": slot.sha256},
        status=201,
        headers={"Cache-Control": "no-store"},
    )


async def _receive(
    request: web.Request, written: TemporaryBlob, limit: int
) -> web.StreamResponse | None:
    """Stream the body into ``written``; a refusal, or None when it all arrived and verified."""
    digest = request[SIGNED_BODY_DIGEST]
    async for chunk in request.content.iter_chunked(RECEIVE_CHUNK_BYTES):
        if written.size + len(chunk) > limit:
            return _too_large(limit)
        digest.update(chunk)
        await asyncio.to_thread(written.write, chunk)
    if not digest.matches():
        _log.warning("reviewer_auth_failed", error_type="digest_mismatch")
        return unauthorized()
    return None


def _too_large(limit: int) -> web.Response:
    return _json_error(413, f"A reply is at most {limit} bytes (setting max_reply_bytes).")


@require_reviewer_signature
async def delete_reply(request: web.Request) -> web.StreamResponse:
    """Empty a slot (its row, then its file)."""
    deleted = await asyncio.to_thread(request.app[STORE].delete_reply, _slot_tag(request))
    if not deleted:
        return _json_error(404, "no such reply")
    activity.count("reply_deleted_by_reviewer")
    return web.Response(status=204)
