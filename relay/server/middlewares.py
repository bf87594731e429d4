"""What every response gets: security headers, the page language, error pages.

Security headers are added in ``on_response_prepare`` rather than a middleware,
so that they are on every response the application sends: static files,
aiohttp's own 404/405 and 413 answers, and errors raised anywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from relay.log import get_logger
from relay.server import i18n
from relay.server.appkeys import CONFIG
from relay.server.problems import (
    INTERNAL_ERROR,
    Problem,
    SourceProblem,
    problem_for_status,
)
from relay.server.rendering import LANGUAGE, render_page, request_language

API_PREFIX = "/api/"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        # The browser bundle (/static/dist/app.js) and nothing inline or external.
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        # The bundle uploads ciphertext to this relay's tus endpoint, and may
        # encrypt in a worker.
        "connect-src 'self'",
        "worker-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "sync-xhr",
        "usb",
        "xr-spatial-tracking",
    )
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "X-Robots-Tag": "noindex, nofollow",
}

NO_CACHING = "no-store"
"""For every response: a source's browser keeps no copy and no record of the relay."""

VALIDATOR_HEADERS = (hdrs.ETAG, hdrs.LAST_MODIFIED)
"""Never sent: a unique ETag, echoed back by the browser, would tag a returning visitor."""

_log = get_logger("relay.server.middlewares")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the headers every response must carry."""
    response.headers.popall(hdrs.SERVER, None)
    response.headers.update(SECURITY_HEADERS)
    response.headers[hdrs.CACHE_CONTROL] = NO_CACHING
    for validator in VALIDATOR_HEADERS:
        response.headers.popall(validator, None)
    onion_address = request.app[CONFIG].onion_address
    if onion_address and not request.path.startswith(API_PREFIX):
        response.headers["Onion-Location"] = onion_location(onion_address, request.path_qs)


def onion_location(onion_address: str, path_qs: str) -> str:
    """The same page on the onion service (Tor Browser offers to switch to it)."""
    address = onion_address.strip().rstrip("/")
    if "://" not in address:
        address = "http://" + address
    return address + path_qs


@web.middleware
async def choose_language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The page language from ``?lang=``, else the configured default (no cookie)."""
    request[LANGUAGE] = i18n.choose_language(
        request.query.get("lang"), request.app[CONFIG].default_language
    )
    return await handler(request)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors on source pages become a page in the source's language.

    The reviewer API (under /api/) answers its own errors in JSON; only an
    unexpected exception there is turned into a bare JSON 500 here.
    Errors are logged by type only, never with request data.
    """
    try:
        return await handler(request)
    except SourceProblem as refusal:
        return _problem_page(request, refusal.problem, refusal.params)
    except web.HTTPException as http_error:
        if http_error.status < 400 or request.path.startswith(API_PREFIX):
            raise
        return _problem_page(request, problem_for_status(http_error.status), {})
    except Exception as error:
        _log.error("request.failed", error_type=type(error).__name__)
        if request.path.startswith(API_PREFIX):
            return web.json_response({"error": "internal error"}, status=500)
        return _problem_page(request, INTERNAL_ERROR, {})


def _problem_page(request: web.Request, problem: Problem, params: dict[str, int]) -> web.Response:
    language = request_language(request)
    gettext_ = i18n.translations(language).gettext
    formatted = {
        name: (i18n.format_size(value, language) if name == "limit" else str(value))
        for name, value in params.items()
    }
    # A refused upload may still be arriving: aiohttp reads and discards the
    # rest for a bounded time (lingering close), so that the browser gets to
    # see this page instead of a connection reset.
    page = render_page(
        request,
        "error.html",
        {
            "title": gettext_(problem.title),
            "explanation": gettext_(problem.explanation) % formatted,
            "nothing_stored": problem.nothing_stored,
        },
        status=problem.status,
    )
    if problem.retry_after_seconds is not None:
        page.headers["Retry-After"] = str(problem.retry_after_seconds)
    return page
