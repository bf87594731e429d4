"""The no-JavaScript "read replies" pages: the only server module that holds a reply identity.

With JavaScript off, the source's browser cannot decrypt, so the server does it,
statelessly: every request is a POST whose form carries the typed codename
(no session, no cookie, nothing in the URL but the page language). The server
derives the conversation's keys (``relay.server.codenames.derive_keys``: a
bounded admission that answers "busy, try again in a minute" rather than make
anyone wait, and a five-minute cache so that one source's reading, download
and delete derive once), reads the ring's slots straight from the store, decrypts
and checks each reply in memory (``open_reply``: MAC first, then conversation,
slot and entries), and answers a page labelled as decrypted by the server.

    POST /replies             codename           the replies, n and day, ordered by n, gaps
                                                 flagged; what fails a check is counted only
    POST /replies/attachment  codename, slot, name   a reply's file, as a download
    POST /replies/delete      codename, slot     empty the slot (the server computes the token)

A wrong codename and one without replies yet give the same page. Nothing here
is logged, and nothing of a reply or a codename is written anywhere.
The import contract "only relay.server.reply_page holds a reply identity"
(pyproject.toml) keeps every other server module away from
``relay.conversation.identity``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass, field

from aiohttp import web

from relay.activity import activity
from relay.config import Config
from relay.conversation.derivation import ConversationKeys
from relay.conversation.identity import open_reply
from relay.conversation.reply import Reply, ReplyError, ReplyLimits
from relay.conversation.slots import delete_token, slot_tag
from relay.digits import parse_ascii_decimal
from relay.server.appkeys import CONFIG, STORE
from relay.server.codenames import (
    CODENAME_FIELD,
    NO_REPLIES_CHECKED_TEXT,
    NO_REPLIES_UNCHECKED_TEXT,
    derive_keys,
    relay_salt,
    require_typed_codename,
    ring_reading,
)
from relay.server.i18n import N_
from relay.server.problems import (
    BAD_REQUEST,
    MALFORMED_FORM,
    UPLOAD_TOO_SLOW,
    Problem,
    SourceProblem,
)
from relay.server.rendering import render_page
from relay.server.small_body import read_small_body
from relay.store import SubmissionStore

READ_PATH = "/replies"
ATTACHMENT_PATH = "/replies/attachment"
DELETE_PATH = "/replies/delete"
MAX_FORM_BYTES = 16 * 1024
"""A reading, download or delete form: a codename, a slot and a file name."""
MAX_FORM_FIELDS = 8
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

REPLY_FILE_GONE = Problem(
    404,
    N_("This file is not available"),
    N_(
        "The reply it belonged to was deleted or replaced, or could not be authenticated. "
        "Read your replies again."
    ),
    nothing_stored=False,
)


def setup_reply_pages(app: web.Application) -> None:
    """Add the no-JS reply pages to ``app``."""
    app.router.add_post(READ_PATH, read_replies, name="replies_page")
    app.router.add_post(ATTACHMENT_PATH, download_attachment, name="replies_attachment")
    app.router.add_post(DELETE_PATH, delete_after_reading, name="replies_delete")


@dataclass
class ShownReply:
    """A reply that passed every check, as the page shows it."""

    n: int
    day: str
    slot: int
    message: str = field(repr=False)
    files: list[tuple[str, int]] = field(default_factory=list, repr=False)
    """(name, size) of each attachment; their bytes are read again only to download."""
    missing_before: int = 0
    """Replies numbered between the previous shown one (or 0) and this one: a gap."""


@dataclass
class RingReading:
    replies: list[ShownReply]
    not_authentic: int
    """Filled slots whose reply failed a check: counted, never shown."""


def reply_limits(config: Config) -> ReplyLimits:
    return ReplyLimits(max_reply_bytes=config.max_reply_bytes, max_entries=config.max_reply_entries)


def _read_slot(
    store: SubmissionStore, keys: ConversationKeys, slot: int, config: Config
) -> Reply | None:
    """The checked reply in ``slot``; None when empty; ReplyError when it fails a check."""
    tag = slot_tag(keys.slot_key, slot).hex()
    try:
        with store.open_reply(tag) as blob:
            ciphertext = blob.read(config.max_reply_bytes + 1)
    except FileNotFoundError:
        return None
    return open_reply(
        ciphertext, keys, slot, ring_size=config.reply_ring_size, limits=reply_limits(config)
    )


def read_ring(store: SubmissionStore, keys: ConversationKeys, config: Config) -> RingReading:
    """Every reply in the conversation's ring, checked, ordered by n, gaps marked.

    One slot at a time, keeping only texts and file names: the memory a page
    costs is about one reply plus the texts.
    """
    ring_size = config.reply_ring_size
    tags = [slot_tag(keys.slot_key, slot).hex() for slot in range(ring_size)]
    sizes = store.reply_sizes(tags)
    replies: list[ShownReply] = []
    not_authentic = 0
    for slot, size in enumerate(sizes):
        if size is None:
            continue
        try:
            reply = _read_slot(store, keys, slot, config)
        except ReplyError:
            not_authentic += 1
            continue
        if reply is not None:
            files = [(item.name, len(item.data)) for item in reply.attachments]
            replies.append(ShownReply(reply.n, reply.day, slot, reply.message, files))
    replies.sort(key=lambda shown: shown.n)
    previous = 0
    for shown in replies:
        shown.missing_before = max(0, shown.n - previous - 1)
        previous = shown.n
    return RingReading(replies, not_authentic)


async def _read_form(request: web.Request) -> dict[str, str]:
    """The urlencoded form, at most MAX_FORM_BYTES; a field given twice is refused."""
    media_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise SourceProblem(MALFORMED_FORM)
    try:
        body = await read_small_body(request, MAX_FORM_BYTES)
    except TimeoutError:
        raise SourceProblem(UPLOAD_TOO_SLOW) from None
    if body is None:
        raise SourceProblem(BAD_REQUEST)
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise SourceProblem(MALFORMED_FORM) from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise SourceProblem(MALFORMED_FORM)
    return form


def _slot_field(form: dict[str, str], ring_size: int) -> int:
    slot = parse_ascii_decimal(form.get("slot", ""), max_digits=5)
    if slot is None or slot >= ring_size:
        raise SourceProblem(MALFORMED_FORM)
    return slot


async def _render_replies(
    request: web.Request, form: dict[str, str], *, deleted: bool = False
) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    codename = require_typed_codename(form.get(CODENAME_FIELD, ""))
    keys = await derive_keys(request, codename)
    async with ring_reading(request):
        if deleted:
            await _delete(store, keys, _slot_field(form, config.reply_ring_size))
        reading = await asyncio.to_thread(read_ring, store, keys, config)
    return render_page(
        request,
        "replies.html",
        {
            "replies": reading.replies,
            "not_authentic": reading.not_authentic,
            "deleted": deleted,
            "codename": str(codename),
            "codename_checked": codename.checked,
            "no_replies_text": (
                NO_REPLIES_CHECKED_TEXT if codename.checked else NO_REPLIES_UNCHECKED_TEXT
            ),
            "max_attachments": config.max_attachments,
            "max_submission_bytes": config.max_submission_bytes,
            "max_message_bytes": config.max_message_bytes,
        },
    )


async def read_replies(request: web.Request) -> web.Response:
    """``POST /replies``: the replies to the typed codename, decrypted here."""
    relay_salt(request.app)
    form = await _read_form(request)
    return await _render_replies(request, form)


async def _delete(store: SubmissionStore, keys: ConversationKeys, slot: int) -> None:
    tag = slot_tag(keys.slot_key, slot).hex()
    token = delete_token(keys.delete_key, slot)
    if await asyncio.to_thread(store.delete_reply_with_token, tag, token):
        activity.count("reply_deleted_by_source")  # a daily total, never a line per delete


async def delete_after_reading(request: web.Request) -> web.Response:
    """``POST /replies/delete``: empty one slot of the ring, then show the replies left."""
    relay_salt(request.app)
    form = await _read_form(request)
    _slot_field(form, request.app[CONFIG].reply_ring_size)
    return await _render_replies(request, form, deleted=True)


async def download_attachment(request: web.Request) -> web.Response:
    """``POST /replies/attachment``: one file of a checked reply, never shown inline."""
    relay_salt(request.app)
    config, store = request.app[CONFIG], request.app[STORE]
    form = await _read_form(request)
    slot = _slot_field(form, config.reply_ring_size)
    name = form.get("name", "")
    codename = require_typed_codename(form.get(CODENAME_FIELD, ""))
    keys = await derive_keys(request, codename)
    try:
        async with ring_reading(request):
            reply = await asyncio.to_thread(_read_slot, store, keys, slot, config)
    except ReplyError:
        reply = None
    wanted = [item for item in (reply.attachments if reply else ()) if item.name == name]
    if not wanted:
        raise SourceProblem(REPLY_FILE_GONE)
    return web.Response(
        body=wanted[0].data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": attachment_disposition(name)},
    )


def attachment_disposition(name: str) -> str:
    """``attachment`` with an ASCII stand-in and the UTF-8 name (RFC 6266)."""
    fallback = "".join(
        char if char.isascii() and (char.isalnum() or char in "._-") else "_" for char in name
    )
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quoted}"
