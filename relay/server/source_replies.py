"""The source's side of replies: the ring index, a reply's bytes, delete after reading.

No authentication: a slot's tag is the capability (only the holder of a
codename can compute it). Tags and delete tokens travel only in POST bodies,
never in a URL, and reach no log line. Every body is small and bounded, and
every handler does one indexed query: no heavy work for an anonymous caller.

    GET  /api/v1/conversation-salt  {"salt": <64 hex>, "kdf": "v1"} | 503 when not set up
    POST /api/v1/replies/index      {"tags": [<reply_ring_size tags>]}
         200 {"slots": [null | {"size": n}, ...], "pad": "   "}: the same length
         whatever the ring holds (the pad makes up the difference)
    POST /api/v1/replies/fetch      {"tag": <tag>}  200 the age file | 404
    POST /api/v1/replies/delete     {"tag": <tag>, "token": <64 hex>}  204 | 404

A delete with a wrong token and a delete of an empty slot get the same 404:
the index already tells a tag's holder whether the slot is filled, so this
answer reveals nothing new, and one answer leaves nothing to tell apart.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from relay.activity import activity
from relay.server.appkeys import CONFIG, CONVERSATION_SALT, STORE
from relay.server.json_body import MAX_JSON_DEPTH, JSONBodyError, parse_json_body
from relay.server.reviewer_replies import stream_reply
from relay.server.small_body import read_small_body
from relay.store import DELETE_TOKEN_BYTES, is_valid_tag

SALT_PATH = "/api/v1/conversation-salt"
INDEX_PATH = "/api/v1/replies/index"
FETCH_PATH = "/api/v1/replies/fetch"
DELETE_PATH = "/api/v1/replies/delete"
KDF_VERSION = "v1"
MAX_SMALL_BODY_BYTES = 1024
"""A fetch or delete body: one tag and one token in JSON fit in far less."""
_BYTES_PER_TAG = 80  # a quoted 64-digit tag, a comma and generous spacing
_SIZE_DIGITS = 13
"""The index is padded as if every slot held a reply of 13 digits' size (< 10 TB)."""
NO_SUCH_REPLY = b'{"error": "no such reply"}\n'


def setup_source_replies(app: web.Application) -> None:
    """Add the source's reply routes and the conversation salt route to ``app``."""
    app.router.add_get(SALT_PATH, conversation_salt, allow_head=False, name="conversation_salt")
    app.router.add_post(INDEX_PATH, reply_index, name="reply_index")
    app.router.add_post(FETCH_PATH, fetch_reply, name="reply_fetch")
    app.router.add_post(DELETE_PATH, delete_reply_after_reading, name="reply_delete")


def _json(status: int, payload: object) -> web.Response:
    return web.json_response(payload, status=status, headers={"Cache-Control": "no-store"})


def _bad_request(message: str) -> web.Response:
    return _json(400, {"error": message})


def _no_such_reply() -> web.Response:
    return web.Response(
        status=404,
        body=NO_SUCH_REPLY,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def conversation_salt(request: web.Request) -> web.Response:
    """The relay's public salt, which every codename's derivation mixes in."""
    salt = request.app[CONVERSATION_SALT]
    if salt is None:
        return _json(
            503, {"error": "This relay has no conversation salt: replies are not set up."}
        )
    return _json(200, {"salt": salt.hex(), "kdf": KDF_VERSION})


async def _read_json_object(request: web.Request, limit: int) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the refusal to send (too large, not JSON)."""
    try:
        body = await read_small_body(request, limit)
    except TimeoutError:
        return _json(408, {"error": "The request body took too long to arrive."})
    if body is None:
        return _json(413, {"error": f"The request body is larger than {limit} bytes."})
    try:
        value = parse_json_body(body)
    except JSONBodyError:
        return _bad_request(
            f"The request body must be JSON (UTF-8, nested at most {MAX_JSON_DEPTH} levels)."
        )
    if not isinstance(value, dict):
        return _bad_request("The request body must be a JSON object.")
    return value


async def reply_index(request: web.Request) -> web.Response:
    """For each of the ring's tags, in order: null, or the padded size of its reply."""
    ring_slots = request.app[CONFIG].reply_ring_size
    body = await _read_json_object(request, ring_slots * _BYTES_PER_TAG + 64)
    if isinstance(body, web.Response):
        return body
    tags = index_tags(body, ring_slots)
    if tags is None:
        return _bad_request(
            f'Send {{"tags": [...]}} with exactly {ring_slots} slot tags '
            "(64 lower-case hex digits each)."
        )
    sizes = await asyncio.to_thread(request.app[STORE].reply_sizes, tags)
    return web.Response(
        body=padded_index(sizes, ring_slots),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def padded_index(sizes: list[int | None], ring_slots: int) -> bytes:
    """The index JSON, padded to the length of a full ring of the largest replies."""
    slots = [None if size is None else {"size": size} for size in sizes]
    fullest = [{"size": 10**_SIZE_DIGITS - 1}] * ring_slots
    target = len(_index_json(fullest, 0))
    unpadded = len(_index_json(slots, 0))
    return _index_json(slots, max(0, target - unpadded))


def _index_json(slots: list[Any], pad: int) -> bytes:
    return json.dumps({"slots": slots, "pad": " " * pad}, separators=(",", ":")).encode()


async def fetch_reply(request: web.Request) -> web.StreamResponse:
    """The age file in the slot the body names."""
    body = await _read_json_object(request, MAX_SMALL_BODY_BYTES)
    if isinstance(body, web.Response):
        return body
    tag = fetch_tag(body)
    if tag is None:
        return _bad_request('Send {"tag": "<64 lower-case hex digits>"}.')
    return await stream_reply(request, tag)


async def delete_reply_after_reading(request: web.Request) -> web.Response:
    """Empty the slot if the token is its delete token; one 404 for every other case."""
    body = await _read_json_object(request, MAX_SMALL_BODY_BYTES)
    if isinstance(body, web.Response):
        return body
    tag_and_token = delete_tag_and_token(body)
    if tag_and_token is None:
        return _bad_request(
            'Send {"tag": "<64 hex digits>", "token": "<64 hex digits>"} (lower case).'
        )
    deleted = await asyncio.to_thread(
        request.app[STORE].delete_reply_with_token, *tag_and_token
    )
    if not deleted:
        return _no_such_reply()
    activity.count("reply_deleted_by_source")  # a daily total, never a line per delete
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


# The shapes of the three bodies, apart from their handlers (the fuzz targets
# run them on every value parse_json_body accepts): the value, or None.


def index_tags(body: dict[str, Any], ring_slots: int) -> list[str] | None:
    """``{"tags": [...]}`` with exactly ``ring_slots`` valid tags: the tags."""
    tags = body.get("tags")
    if (
        set(body) != {"tags"}
        or not isinstance(tags, list)
        or len(tags) != ring_slots
        or not all(is_valid_tag(tag) for tag in tags)
    ):
        return None
    return [str(tag) for tag in tags]


def fetch_tag(body: dict[str, Any]) -> str | None:
    """``{"tag": <tag>}``: the tag."""
    tag = body.get("tag")
    if set(body) != {"tag"} or not is_valid_tag(tag):
        return None
    return str(tag)


def delete_tag_and_token(body: dict[str, Any]) -> tuple[str, bytes] | None:
    """``{"tag": <tag>, "token": <64 hex>}``: the tag and the token's bytes."""
    tag, token = body.get("tag"), body.get("token")
    if (
        set(body) != {"tag", "token"}
        or not is_valid_tag(tag)
        or not isinstance(token, str)
        or len(token) != 2 * DELETE_TOKEN_BYTES
        or not is_valid_tag(token)  # the same shape as a tag: lower-case hex
    ):
        return None
    return str(tag), bytes.fromhex(token)
