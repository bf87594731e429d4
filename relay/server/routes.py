"""The source-facing routes: the form, the receipt, the no-JS submit, static files, health."""

from __future__ import annotations

from aiohttp import web

from relay.server.source_views import RECEIVED_PATH, health, submission_form, submission_received
from relay.server.static_files import STATIC_ROUTE, static_file
from relay.server.submit import submit


def setup_source_routes(app: web.Application) -> None:
    """Add the routes every relay has (the reviewer API and tus uploads add their own)."""
    app.router.add_get("/", submission_form)
    app.router.add_get(RECEIVED_PATH, submission_received)
    app.router.add_post("/submit", submit)
    app.router.add_get("/healthz", health)
    # Not add_static: it sends ETag/Last-Modified and answers 304 (see static_files).
    app.router.add_get(STATIC_ROUTE, static_file)
