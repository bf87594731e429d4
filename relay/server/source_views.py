"""The pages a source sees (the form, the receipt) and the health check."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Any

from aiohttp import web

from relay.config import Config
from relay.server.appkeys import CONFIG, KEYRING, STORE
from relay.server.codenames import conversations_enabled, offered_codename
from relay.server.conversation_browser import conversation_browser_context
from relay.server.rendering import (
    BROWSER_BUNDLE,
    browser_encryption_available,
    render_page,
    static_url,
)

RECEIVED_PATH = "/received"
_BROWSER_PAGE_MODULE = "relay.server.browser_page"
"""The browser engineer's part of the form (fingerprint, settings, bundle)."""


async def submission_form(request: web.Request) -> web.Response:
    """``GET /``: the submission form; it works with JavaScript off."""
    config = request.app[CONFIG]
    browser_sealing = await _browser_sealing_context(request)
    return render_page(
        request,
        "index.html",
        {
            "server_sealing_enabled": config.server_sealing_enabled,
            "browser_encryption_available": browser_sealing is not None,
            "browser_sealing": browser_sealing,
            "bundle_url": static_url(BROWSER_BUNDLE) if browser_sealing is not None else None,
            "max_attachments": config.max_attachments,
            "max_submission_bytes": config.max_submission_bytes,
            "max_message_bytes": config.max_message_bytes,
            "conversations_enabled": conversations_enabled(request.app),
            "offered_codename": _offered_codename_text(request, config),
            "conversation_browser": (
                conversation_browser_context(request) if browser_sealing is not None else None
            ),
        },
    )


def _offered_codename_text(request: web.Request, config: Config) -> str | None:
    """A fresh codename for the no-JS form (only when it seals no-JS tips), else None."""
    if not config.server_sealing_enabled:
        return None
    codename = offered_codename(request.app)
    return None if codename is None else str(codename)


async def _browser_sealing_context(request: web.Request) -> Any:
    """What the browser-sealing part of the form needs; None when JS sealing is not built."""
    if not browser_encryption_available():
        return None
    if importlib.util.find_spec(_BROWSER_PAGE_MODULE) is None:
        return None
    context = importlib.import_module(_BROWSER_PAGE_MODULE).browser_sealing_context(request)
    if inspect.isawaitable(context):
        context = await context
    return context


async def submission_received(request: web.Request) -> web.Response:
    """``GET /received``: where ``POST /submit`` sends the source after storing.

    It names no submission: nothing on the source's screen links them to it.
    """
    return received_page(request)


def received_page(request: web.Request, *, codename: str | None = None) -> web.Response:
    """The confirmation; ``codename`` (the words a no-JS tip was sent with) shown once more."""
    return render_page(
        request, "received.html", {"codename": codename}, switcher_path=RECEIVED_PATH
    )


async def health(request: web.Request) -> web.Response:
    """``GET /healthz``: "ok" when the store is open and reviewer keys are loaded.

    It reports no counts or times, which would reveal activity.
    """
    request.app[STORE]  # raises (-> 500) if the store is not open
    if not request.app[KEYRING].current.reviewers:
        return web.json_response({"status": "no reviewer keys"}, status=503)
    return web.json_response({"status": "ok"})
