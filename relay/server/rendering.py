"""Jinja2 templates of the source pages, rendered in the source's language.

Autoescape is on for everything; templates hold no inline script or style (the
Content-Security-Policy forbids both) and no external resource. Static assets
are linked with a content hash in the query, so that they can be cached for a
year and still change with a new release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from relay.conversation.codename import translit_letters
from relay.server import i18n
from relay.server.appkeys import CONFIG

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
BROWSER_BUNDLE = "dist/app.js"
"""The browser engineer's bundle; the form loads it only when it has been built."""

LANGUAGE: web.RequestKey[str] = web.RequestKey("language", str)
"""The language a request's pages are rendered in (set by the middleware)."""


@cache
def _environment(language: str) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_translations(  # type: ignore[attr-defined]
        i18n.translations(language), newstyle=True
    )
    environment.globals["static_url"] = static_url
    environment.globals["translit_letters"] = translit_letters(language)
    return environment


def static_url(name: str) -> str:
    """``/static/<name>?v=<hash of its contents>`` (a new URL whenever the file changes)."""
    return f"/static/{name}?v={_content_hash(STATIC_DIR / name)}"


@cache
def _content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def browser_encryption_available() -> bool:
    """Whether the JavaScript bundle that encrypts in the browser has been built."""
    return (STATIC_DIR / BROWSER_BUNDLE).is_file()


def request_language(request: web.Request) -> str:
    """The language chosen for this request (the default if none was set yet)."""
    language: str | None = request.get(LANGUAGE)
    if language is None:
        return i18n.choose_language(None, request.app[CONFIG].default_language)
    return language


def render_page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    switcher_path: str = "/",
) -> web.Response:
    """An HTML page in the request's language; ``switcher_path`` is where the
    language links lead (the same page when it can be fetched with GET)."""
    language = request_language(request)
    values: dict[str, Any] = {
        "lang": language,
        "languages": list(i18n.LANGUAGES.items()),
        "switcher_path": switcher_path,
        "format_size": lambda size: i18n.format_size(size, language),
    }
    values.update(context or {})
    body = _environment(language).get_template(template).render(values)
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")
