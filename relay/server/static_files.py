"""Static files (CSS, the browser bundle) served with no validators and no caching.

aiohttp's own static route sends ETag and Last-Modified and answers conditional
requests with 304. For a source that is a trace: the browser keeps a record of
the relay, and a coerced server could hand each visitor a unique ETag and
recognise it when it comes back. So every file is sent whole, every time, with
``Cache-Control: no-store`` and nothing a later request could echo back.
"""

from __future__ import annotations

import asyncio
import mimetypes
import stat
from pathlib import Path

from aiohttp import web

from relay.server.rendering import STATIC_DIR

STATIC_ROUTE = "/static/{path:.+}"


def static_file_path(static_dir: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``static_dir``, or None.

    Refuses empty, hidden and ``..`` components and any symlink on the way, so
    that nothing outside the folder can be reached.
    """
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
        return None
    path = static_dir
    for part in parts:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return None
    return path if stat.S_ISREG(mode) else None


def _read_static(relative: str) -> bytes | None:
    path = static_file_path(STATIC_DIR, relative)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


async def static_file(request: web.Request) -> web.Response:
    """``GET /static/<path>``: the file, whole; no ETag, no Last-Modified, never a 304."""
    relative = request.match_info["path"]
    body = await asyncio.to_thread(_read_static, relative)
    if body is None:
        raise web.HTTPNotFound()
    content_type, _ = mimetypes.guess_type(relative)
    response = web.Response(body=body, content_type=content_type or "application/octet-stream")
    if response.content_type.startswith("text/"):
        response.charset = "utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response
