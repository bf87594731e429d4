"""Check that a running relay serves sources exactly the code of a release manifest.

``verify_relay_web`` fetches the pages a source sees, over the path a source
uses (Tor, through ``--proxy``), and checks each one: the Content-Security-Policy
header is the manifest's; the page loads scripts, styles and every other
subresource only from ``/static/`` files the manifest lists; it carries no
inline script (no ``<script>`` with code in it, no ``on*=`` handler, no
``javascript:`` URL; a ``<script type="application/json">`` data block is
data). Then it fetches every file of the manifest, as a page names it and by
its plain path, and compares each one's SHA-256.

What it cannot see: a relay that serves changed code only to some visitors (one
source, one country, one time of day) looks clean to this check. It notices a
relay that changes the code for everyone, which is what a quiet compromise of
the server or of a release most likely looks like. See docs/verify-web.md.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import aiohttp

from relay.errors import TiprelayError
from relay.pull import client_session
from relay.server.static_files import PRECOMPRESSED
from relay.web_manifest import STATIC_URL_PREFIX, WebManifest

SOURCE_PAGES = (
    ("/", 200),
    ("/?lang=ru", 200),
    ("/?lang=uk", 200),
    ("/?lang=en", 200),
    ("/received", 200),
    ("/received?lang=uk", 200),
    ("/received?lang=en", 200),
    # The error page a source sees for a mistyped address (the same template
    # shows every refusal).
    ("/no-such-page-verify-web", 404),
)
"""Every page a source can reach with GET, and the status it should answer."""

MAX_PAGE_BYTES = 1024 * 1024
"""A source page is a few kilobytes; more is refused, not read."""
MAX_STATIC_FILE_BYTES = 32 * 1024 * 1024
"""The bundle is about 200 KB; more is refused, not read."""
BROWSER_HEADERS = {
    # What Tor Browser (Firefox ESR 128) sends, so the relay sees a source-like
    # request; it still is not one (no TLS or header-order match, no JS run).
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
}

DATA_BLOCK_TYPES = ("application/json",)
"""Script types that are data, never code: their content is allowed inline."""

# Elements and the attributes through which they load something.
_SUBRESOURCE_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "audio": ("src",),
    "video": ("src", "poster"),
    "track": ("src",),
    "input": ("src",),
}
_URL_ATTRIBUTES = ("href", "src", "action", "formaction", "data", "poster")


class VerifyWebError(TiprelayError):
    """The relay could not be checked (unreachable, or an answer too large)."""


@dataclass(frozen=True)
class Check:
    """One check: what was checked (a page or a file), whether it held, and why not."""

    subject: str
    passed: bool
    detail: str


@dataclass
class VerifyReport:
    """Every check made, in order."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def add(self, subject: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(subject, passed, detail))


class _PageScan(HTMLParser):
    """What a page loads, and any inline script it carries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.subresources: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.inline_scripts.append(f"<{tag} {name}=...> (an event handler)")
            if name in _URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
                self.inline_scripts.append(f"<{tag} {name}=javascript:...>")
        for name in _SUBRESOURCE_ATTRIBUTES.get(tag, ()):
            if values.get(name):
                # srcset holds "url width, url width"; every URL counts.
                urls = values[name].split(",") if name == "srcset" else [values[name]]
                self.subresources.extend(url.strip().split(" ")[0] for url in urls)
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.subresources.append(values.get("content", "").partition("url=")[2] or "(refresh)")
        # A <script type="application/json"> is a data block the browser never
        # runs (the form's recipients and settings); any other type may run.
        self._in_script = tag == "script" and values.get("type", "").strip().lower() not in (
            DATA_BLOCK_TYPES
        )

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(f"<script> with {len(data.strip())} characters inline")


@dataclass(frozen=True)
class _Answer:
    status: int
    policies: list[str]
    """Every Content-Security-Policy header, in order."""
    body: bytes
    coding: str = "identity"


async def _fetch(
    session: aiohttp.ClientSession, url: str, limit: int, coding: str = "identity"
) -> _Answer:
    """``url`` as the relay sends it when asked for ``coding``, bytes as they came."""
    headers = {**BROWSER_HEADERS, "Accept-Encoding": coding}
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise VerifyWebError(f"{url}: the answer is larger than {limit} bytes.")
            policies = response.headers.getall("Content-Security-Policy", [])
            sent_coding = response.headers.get("Content-Encoding", "identity")
            return _Answer(response.status, list(policies), bytes(body), sent_coding)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise VerifyWebError(f"{url}: cannot fetch it: {exc or type(exc).__name__}") from None


def _static_name(base_url: str, reference: str) -> str | None:
    """The manifest name a page's reference resolves to, or None if not a /static/ file here."""
    absolute = urlsplit(urljoin(base_url + "/", reference))
    base = urlsplit(base_url)
    if (absolute.scheme, absolute.netloc) != (base.scheme, base.netloc):
        return None
    if not absolute.path.startswith(STATIC_URL_PREFIX):
        return None
    return absolute.path.removeprefix(STATIC_URL_PREFIX)


async def _check_page(
    session: aiohttp.ClientSession,
    base_url: str,
    page: str,
    expected_status: int,
    manifest: WebManifest,
    report: VerifyReport,
) -> set[str]:
    """Check one page; returns the subresource URLs (absolute) it loads from /static/."""
    answer = await _fetch(session, base_url + page, MAX_PAGE_BYTES)
    status = answer.status
    report.add(
        page,
        status == expected_status,
        f"answered {status}" + ("" if status == expected_status else f", not {expected_status}"),
    )
    policies = answer.policies
    policy_ok = policies == [manifest.content_security_policy]
    report.add(
        page,
        policy_ok,
        "Content-Security-Policy as in the manifest"
        if policy_ok
        else f"Content-Security-Policy differs from the manifest's: {policies!r}",
    )
    scan = _PageScan()
    scan.feed(answer.body.decode("utf-8", errors="replace"))
    scan.close()
    report.add(
        page,
        not scan.inline_scripts,
        "no inline script"
        if not scan.inline_scripts
        else "inline script: " + "; ".join(scan.inline_scripts),
    )
    loaded: set[str] = set()
    unlisted = []
    for reference in scan.subresources:
        name = _static_name(base_url, reference)
        if name is None or name not in manifest.static_files:
            unlisted.append(reference)
        else:
            loaded.add(urljoin(base_url + "/", reference))
    report.add(
        page,
        not unlisted,
        f"loads {len(scan.subresources)} file(s), all in the manifest"
        if not unlisted
        else "loads files not in the manifest: " + ", ".join(map(repr, unlisted)),
    )
    return loaded


def _coding_of(name: str) -> tuple[str, str]:
    """(the file a manifest name stands for, the coding asked): a precompressed
    copy is checked as the relay sends it in place of its file."""
    for coding, suffix in PRECOMPRESSED:
        if name.endswith(suffix):
            return name.removesuffix(suffix), coding
    return name, "identity"


async def _check_file(
    session: aiohttp.ClientSession, url: str, name: str, expected: str, report: VerifyReport
) -> None:
    subject = STATIC_URL_PREFIX + name
    _, coding = _coding_of(name)
    answer = await _fetch(session, url, MAX_STATIC_FILE_BYTES, coding)
    if answer.status != 200:
        report.add(subject, False, f"{url} answered {answer.status}, not 200")
        return
    if answer.coding != coding:
        report.add(subject, False, f"{url} came as {answer.coding} when asked for {coding}")
        return
    digest = hashlib.sha256(answer.body).hexdigest()
    shown = url.removeprefix(url.split(STATIC_URL_PREFIX)[0])
    report.add(
        subject,
        digest == expected,
        f"SHA-256 as in the manifest ({shown})"
        if digest == expected
        else f"CHANGED: {shown} has SHA-256 {digest}, the manifest says {expected}",
    )


def _file_urls(
    base_url: str, manifest: WebManifest, loaded: Iterable[str]
) -> list[tuple[str, str]]:
    """(URL, manifest name): every file by its plain path, and each URL a page uses."""
    urls = {
        (base_url + STATIC_URL_PREFIX + _coding_of(name)[0], name)
        for name in manifest.static_files
    }
    for url in loaded:
        name = _static_name(base_url, url)
        if name is not None:
            urls.add((url, name))
            # What a browser that asks for compression gets from this URL, too.
            for _, suffix in PRECOMPRESSED:
                if name + suffix in manifest.static_files:
                    urls.add((url, name + suffix))
    return sorted(urls)


async def verify_relay_web(
    server_url: str, manifest: WebManifest, *, proxy: str | None = None
) -> VerifyReport:
    """Check the relay at ``server_url`` against ``manifest``; every check is in the report."""
    base_url = server_url.rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise VerifyWebError(f"{server_url!r} is not an http:// or https:// address.")
    report = VerifyReport()
    # Bytes as sent: each file is asked for in each coding the manifest lists.
    async with client_session(proxy, auto_decompress=False) as session:
        loaded: set[str] = set()
        for page, expected_status in SOURCE_PAGES:
            loaded |= await _check_page(session, base_url, page, expected_status, manifest, report)
        for url, name in _file_urls(base_url, manifest, loaded):
            await _check_file(session, url, name, manifest.static_files[name], report)
    return report


def run_verify_relay_web(
    server_url: str, manifest: WebManifest, *, proxy: str | None = None
) -> VerifyReport:
    """``verify_relay_web`` from synchronous code (the CLI)."""
    return asyncio.run(verify_relay_web(server_url, manifest, proxy=proxy))
