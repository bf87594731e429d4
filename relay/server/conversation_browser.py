"""What the form page hands to the browser's conversation script
(relay/web/js/conversation_page.js), when JavaScript seals in the browser.

Two JSON blocks (data, not script: the CSP forbids nothing) rendered by
``templates/read_replies.html``:

- ``#conversation-settings``: the relay's public salt, the ring size, the reply
  limits, and the API paths the script posts to (bodies only, never URLs);
- ``#conversation-messages``: every text the script may show, translated into
  the page's language (placeholders such as ``%(count)s`` filled in by the script).

The codename itself never reaches the server on this path: the browser makes
it, folds it and derives from it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.server import i18n
from relay.server.appkeys import CONFIG, CONVERSATION_SALT
from relay.server.codenames import (
    CHECK_FAILED_TEXT,
    EMPTY_TEXT,
    NO_REPLIES_CHECKED_TEXT,
    NO_REPLIES_UNCHECKED_TEXT,
    TOO_LONG_TEXT,
    UNKNOWN_WORD_TEXT,
    WORD_COUNT_TEXT,
)
from relay.server.i18n import N_
from relay.server.rendering import request_language
from relay.server.source_replies import DELETE_PATH, FETCH_PATH, INDEX_PATH

MESSAGES: dict[str, str] = {
    "codename_empty": EMPTY_TEXT,
    "codename_unknown_word": UNKNOWN_WORD_TEXT,
    "codename_word_count": WORD_COUNT_TEXT,
    "codename_check_failed": CHECK_FAILED_TEXT,
    "codename_too_long": TOO_LONG_TEXT,
    "reading": N_("Your browser is deriving your keys and fetching the replies…"),
    "decrypted_here": N_(
        "Decrypted in your browser: your codename and these replies never left this device."
    ),
    "no_replies": NO_REPLIES_CHECKED_TEXT,
    "no_replies_unchecked": NO_REPLIES_UNCHECKED_TEXT,
    "not_authentic": N_(
        "Items that could not be authenticated and were not shown: %(count)s. They may be "
        "forged or damaged, so nothing in them is shown."
    ),
    "gap": N_(
        "Missing here: %(count)s earlier replies (deleted, expired, or replaced by newer ones)."
    ),
    "reply_heading": N_("Reply %(n)s, written on %(day)s"),
    "download": N_("Download %(name)s"),
    "delete": N_("Delete this reply"),
    "deleted": N_("The reply was deleted."),
    "delete_advice": N_(
        "Delete each reply once you have read it: until then, anyone who learns your "
        "codename can read it too."
    ),
    "failed": N_("The replies could not be fetched. Check your connection and try again."),
    "continues": N_(
        "Your next message from the form above continues this conversation, under the "
        "codename you typed."
    ),
}


def conversation_browser_context(request: web.Request) -> dict[str, Any] | None:
    """The two JSON blocks' values; None when the relay keeps no conversations."""
    salt = request.app[CONVERSATION_SALT]
    if salt is None:
        return None
    config = request.app[CONFIG]
    gettext = i18n.translations(request_language(request)).gettext
    settings = {
        "salt": salt.hex(),
        "ringSize": config.reply_ring_size,
        "maxReplyBytes": config.max_reply_bytes,
        "maxEntries": config.max_reply_entries,
        "indexPath": INDEX_PATH,
        "fetchPath": FETCH_PATH,
        "deletePath": DELETE_PATH,
    }
    return {"settings": settings, "messages": {k: gettext(t) for k, t in MESSAGES.items()}}
