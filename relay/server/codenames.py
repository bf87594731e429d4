"""Codenames on the no-JavaScript pages: offering one, reading a typed one, deriving keys.

With JavaScript off the server makes the codename (``GET /``) and folds what the
source typed back to its 7 word indices. A tip or follow-up seals those indices
as they are (no derivation before it is acknowledged); only the reply pages
derive the conversation's keys (PBKDF2, about 0.15 s of CPU), in a worker
thread, admitted by ``relay.server.derivation_gate``. None of this touches a reply identity:
only ``relay.server.reply_page`` may (import-linter). A codename never goes
into a URL, a log line or a file; errors are logged by type only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from relay.activity import activity
from relay.conversation.codename import (
    Codename,
    CodenameError,
    fold_codename,
    generate_codename,
)
from relay.conversation.derivation import ConversationKeys, derive_conversation_keys
from relay.server.appkeys import CONFIG, CONVERSATION_SALT, DERIVATION_GATE, RING_READ_SLOTS
from relay.server.i18n import N_
from relay.server.problems import DERIVATION_BUSY, Problem, SourceProblem

CODENAME_FIELD = "codename"
CODENAME_FIELD_MAX_BYTES = 8 * 1024
"""A typed codename field: 1000 code points (fold's own limit) of up to 4 bytes, with room."""

EMPTY_TEXT = N_(
    "The codename field was empty. Type the eight words you wrote down, then try again."
)
UNKNOWN_WORD_TEXT = N_(
    "Word %(position)s of what you typed is not one of the codename words. The words are "
    "English, in Latin letters: copy it letter by letter from the words you wrote down "
    "(typed in Cyrillic, each Latin letter as its Cyrillic letter, it is read too), then "
    "try again."
)
WORD_COUNT_TEXT = N_(
    "What you typed has %(count)s words from the list; a codename has eight (older ones "
    "have seven). Check it against the words you wrote down, then try again."
)
CHECK_FAILED_TEXT = N_(
    "Check the order and spelling of the words. Each word you typed is in the list, but "
    "together they are not a codename: one is probably mistyped into another list word, or "
    "two are swapped. Compare them with the eight words you wrote down, then try again. "
    "Nothing was looked up."
)
NO_REPLIES_CHECKED_TEXT = N_(
    "No replies yet. Your codename is typed correctly (its last word checks the others), so "
    "this is your conversation: keep the words you wrote down, and come back later. A message "
    "you send from this page goes to the same conversation."
)
NO_REPLIES_UNCHECKED_TEXT = N_(
    "No replies yet. This codename has seven words, as older codenames do, so this page cannot "
    "check that you typed it correctly. If you wrote down eight words, type all eight. If it "
    "has seven, compare each word and their order with what you wrote down before you write "
    "to us again from here: a mistyped codename starts a new conversation."
)
TOO_LONG_TEXT = N_("A codename is eight short words. Type only those, then try again.")

CODENAME_EMPTY = Problem(400, N_("Type your codename"), EMPTY_TEXT, nothing_stored=False)
CODENAME_UNKNOWN_WORD = Problem(
    400,
    N_("Your codename has a word that is not in the list"),
    UNKNOWN_WORD_TEXT,
    nothing_stored=False,
)
CODENAME_WORD_COUNT = Problem(
    400, N_("A codename has eight words"), WORD_COUNT_TEXT, nothing_stored=False
)
CODENAME_CHECK_FAILED = Problem(
    400,
    N_("Check the order and spelling of the words"),
    CHECK_FAILED_TEXT,
    nothing_stored=False,
)
"""Eight list words whose last is not the check word of the first seven: caught
from the words alone, before any derivation slot is taken (no relay data, no oracle)."""
CODENAME_TOO_LONG = Problem(
    400, N_("That is too long for a codename"), TOO_LONG_TEXT, nothing_stored=False
)
CONVERSATIONS_OFF = Problem(
    403,
    N_("Replies are not set up on this relay"),
    N_(
        "This relay cannot keep conversations yet, so there are no replies to read. You can "
        "still send a message."
    ),
    nothing_stored=False,
)


def conversations_enabled(app: web.Application) -> bool:
    """Whether the relay has its conversation salt (without it, no codenames)."""
    return app[CONVERSATION_SALT] is not None


def offered_codename(app: web.Application) -> Codename | None:
    """A fresh codename for the no-JS form, or None when conversations are off."""
    return generate_codename() if conversations_enabled(app) else None


def read_typed_codename(text: str, *, nothing_stored: bool = False) -> Codename | None:
    """The codename the source typed; None when the field was left empty.

    Anything else that is not 7 list words raises the SourceProblem naming
    what is wrong (the list is public: saying which word is wrong tells nothing).
    """
    try:
        return fold_codename(text)
    except CodenameError as error:
        if error.kind == "empty":
            return None
        problem, params = _problem_for(error)
        raise SourceProblem(
            dataclasses.replace(problem, nothing_stored=nothing_stored), **params
        ) from None


def _problem_for(error: CodenameError) -> tuple[Problem, dict[str, int]]:
    if error.kind == "unknown_word":
        return CODENAME_UNKNOWN_WORD, {"position": int(error.position or 0)}
    if error.kind == "word_count":
        return CODENAME_WORD_COUNT, {"count": int(error.count or 0)}
    if error.kind == "check_failed":
        return CODENAME_CHECK_FAILED, {}
    return CODENAME_TOO_LONG, {}


def require_typed_codename(text: str) -> Codename:
    """Like ``read_typed_codename``, for pages that need one (reading replies)."""
    codename = read_typed_codename(text)
    if codename is None:
        raise SourceProblem(CODENAME_EMPTY)
    return codename


def relay_salt(app: web.Application) -> bytes:
    """The relay's conversation salt; CONVERSATIONS_OFF when there is none."""
    salt = app[CONVERSATION_SALT]
    if salt is None:
        raise SourceProblem(CONVERSATIONS_OFF)
    return salt


async def derive_keys(request: web.Request, codename: Codename) -> ConversationKeys:
    """The conversation's keys for a no-JS reply page: from the gate's short cache, or
    derived in a worker thread behind a derivation slot (``relay.server.derivation_gate``:
    DERIVATION_BUSY at once or within ``derivation_wait_ms``, nothing for a client
    that has gone)."""
    salt = relay_salt(request.app)
    gate = request.app[DERIVATION_GATE]
    keys = gate.cached(codename, salt)
    if keys is None:
        async with gate.admitted(request):
            keys = await asyncio.to_thread(derive_conversation_keys, codename, salt)
        gate.remember(codename, salt, keys)
    return keys


RING_READS_AT_ONCE = 2
"""No-JS readers whose ring of replies is read and decrypted at once (up to
``reply_ring_size`` replies of ``max_reply_bytes`` each)."""


@contextlib.asynccontextmanager
async def ring_reading(request: web.Request) -> AsyncIterator[None]:
    """Hold one of ``RING_READS_AT_ONCE`` slots while a reply page reads the ring.

    Keys from the derivation gate's cache skip the derivation slots, so without
    this, one conversation's keys, cached, would let anonymous requests make the
    relay decrypt its replies as often as they like at once. None free within
    ``derivation_wait_ms``: the same "relay is busy" page.
    """
    slots = request.app[RING_READ_SLOTS]
    try:
        async with asyncio.timeout(request.app[CONFIG].derivation_wait_ms / 1000):
            await slots.acquire()
    except TimeoutError:
        activity.count("reply_read_refused_busy")
        raise SourceProblem(DERIVATION_BUSY) from None
    try:
        yield
    finally:
        slots.release()
