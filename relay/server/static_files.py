"""Static files (CSS, the browser bundle) served with no validators and no caching.

aiohttp's own static route sends ETag and Last-Modified and answers conditional
requests with 304. For a source that is a trace: the browser keeps a record of
the relay, and a coerced server could hand each visitor a unique ETag and
recognise it when it comes back. So every file is sent whole, every time, with
``Cache-Control: no-store`` and nothing a later request could echo back.

Sources are on slow Tor circuits, so each file is sent precompressed when the
browser asks for it (``Accept-Encoding``): brotli (``.br``) first, then gzip
(``.gz``), copies that scripts/build-js makes next to each file. A copy older
than its file is stale and never sent. These files carry no secret, so
compression reveals nothing (BREACH); nothing else the relay sends is
compressed. The copies themselves are not files of the route.
"""

from __future__ import annotations

import asyncio
import mimetypes
import stat
from pathlib import Path

from aiohttp import web

from relay.server.rendering import STATIC_DIR

STATIC_ROUTE = "/static/{path:.+}"
PRECOMPRESSED = (("br", ".br"), ("gzip", ".gz"))
"""Content codings the route can send, best first, with their copies' suffixes."""


def static_file_path(static_dir: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``static_dir``, or None.

    Refuses empty, hidden and ``..`` components and any symlink on the way, so
    that nothing outside the folder can be reached.
    """
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
        return None
    if relative.endswith(tuple(suffix for _, suffix in PRECOMPRESSED)):
        return None  # a precompressed copy, sent only in place of its file
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


def accepted_codings(accept_encoding: str) -> set[str]:
    """The content codings an ``Accept-Encoding`` value allows (``q=0`` refuses one)."""
    accepted: set[str] = set()
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        refused = any(
            parameter.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000")
            for parameter in parameters
        )
        if coding and not refused:
            accepted.add(coding.lower())
    return accepted


def _fresh_copy(path: Path, suffix: str) -> Path | None:
    """The precompressed copy of ``path``, if it is a regular file no older than it."""
    copy = path.with_name(path.name + suffix)
    try:
        copy_stat = copy.lstat()
        if not stat.S_ISREG(copy_stat.st_mode):
            return None
        return copy if copy_stat.st_mtime_ns >= path.stat().st_mtime_ns else None
    except OSError:
        return None


def read_static(
    static_dir: Path, relative: str, accepted: set[str]
) -> tuple[bytes, str | None] | None:
    """The bytes to send for ``relative`` and their content coding (None: the file as
    it is), given the codings the browser accepts; None if there is no such file."""
    path = static_file_path(static_dir, relative)
    if path is None:
        return None
    try:
        for coding, suffix in PRECOMPRESSED:
            if coding in accepted and (copy := _fresh_copy(path, suffix)) is not None:
                return copy.read_bytes(), coding
        return path.read_bytes(), None
    except OSError:
        return None


async def static_file(request: web.Request) -> web.Response:
    """``GET /static/<path>``: the file, whole; no ETag, no Last-Modified, never a 304."""
    relative = request.match_info["path"]
    accepted = accepted_codings(request.headers.get("Accept-Encoding", ""))
    found = await asyncio.to_thread(read_static, STATIC_DIR, relative, accepted)
    if found is None:
        raise web.HTTPNotFound()
    body, coding = found
    content_type, _ = mimetypes.guess_type(relative)
    response = web.Response(body=body, content_type=content_type or "application/octet-stream")
    if response.content_type.startswith("text/"):
        response.charset = "utf-8"
    if coding is not None:
        response.headers["Content-Encoding"] = coding
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-store"
    return response
