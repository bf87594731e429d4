"""The release manifest of the code a relay serves to sources.

Whoever controls the JavaScript a source's browser runs controls the tip. The
manifest pins it: the SHA-256 of every static file the relay serves under
``/static/`` (the browser bundle, the CSS, anything else there), and the
Content-Security-Policy its pages carry, which is what forbids any other
script::

    {
      "content_security_policy": "default-src 'none'; ...",
      "format": "tiprelay-web-manifest-1",
      "static_files": {"dist/app.js": "<sha256>", "relay.css": "<sha256>"}
    }

It is made from a checkout (or an installed relay) with ``tiprelay
web-manifest`` and is the same on any machine for the same commit and lock:
sorted keys, no times, no paths outside the static folder. ``tiprelay
verify-web`` compares a running relay against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from relay.errors import TiprelayError
from relay.server.middlewares import CONTENT_SECURITY_POLICY
from relay.server.rendering import STATIC_DIR
from relay.server.static_files import PRECOMPRESSED, static_file_path

MANIFEST_FORMAT = "tiprelay-web-manifest-1"
STATIC_URL_PREFIX = "/static/"
MAX_WEB_MANIFEST_BYTES = 1024 * 1024
"""Far beyond any real manifest (a few hundred bytes per file)."""


class WebManifestError(TiprelayError):
    """The web manifest is missing or malformed; make it again with tiprelay web-manifest."""


@dataclass(frozen=True)
class WebManifest:
    """What a relay serves to sources: each static file's SHA-256, and the pages' CSP."""

    static_files: Mapping[str, str]
    """Path under /static/ (e.g. ``dist/app.js``) -> SHA-256, lowercase hex."""
    content_security_policy: str

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, two-space indent, a final newline."""
        document = {
            "format": MANIFEST_FORMAT,
            "static_files": dict(sorted(self.static_files.items())),
            "content_security_policy": self.content_security_policy,
        }
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> WebManifest:
        """Parse and validate a manifest; raises WebManifestError with the reason."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise WebManifestError(f"The web manifest is not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise WebManifestError(f"The web manifest's format is not {MANIFEST_FORMAT}.")
        files = document.get("static_files")
        policy = document.get("content_security_policy")
        if not isinstance(files, dict) or not isinstance(policy, str):
            raise WebManifestError("The web manifest lacks static_files or the policy.")
        for name, digest in files.items():
            if static_file_path_is_unsafe(name) or not _is_sha256(digest):
                raise WebManifestError(f"The web manifest's entry {name!r} is malformed.")
        return cls(static_files=dict(files), content_security_policy=policy)

    @classmethod
    def read(cls, path: Path) -> WebManifest:
        """Read a manifest file (at most MAX_WEB_MANIFEST_BYTES)."""
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_WEB_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise WebManifestError(f"Cannot read the web manifest {path}: {exc}") from None
        if len(raw) > MAX_WEB_MANIFEST_BYTES:
            raise WebManifestError(f"The web manifest {path} is too large.")
        return cls.from_json(raw.decode("utf-8", errors="replace"))


def static_file_path_is_unsafe(name: object) -> bool:
    """Whether ``name`` is not a plain relative path the static route could serve."""
    if not isinstance(name, str) or not name:
        return True
    parts = name.split("/")
    return any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts)


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(character in "0123456789abcdef" for character in value)
    )


def served_static_files(static_dir: Path = STATIC_DIR) -> dict[str, str]:
    """Every file the static route would serve from ``static_dir`` -> its SHA-256,
    and every precompressed copy it would send in a file's place (``dist/app.js.br``)."""
    digests: dict[str, str] = {}
    for path in sorted(static_dir.rglob("*")):
        relative = path.relative_to(static_dir).as_posix()
        # The route's own rule: no hidden parts, no symlinks, regular files only.
        if static_file_path(static_dir, relative) is None and not _is_served_copy(
            static_dir, relative
        ):
            continue
        digests[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _is_served_copy(static_dir: Path, relative: str) -> bool:
    for _, suffix in PRECOMPRESSED:
        base = relative.removesuffix(suffix)
        if base != relative and static_file_path(static_dir, base) is not None:
            path = static_dir / relative
            return path.is_file() and not path.is_symlink()
    return False


def make_web_manifest(static_dir: Path = STATIC_DIR) -> WebManifest:
    """The manifest of what this relay (this checkout, or this install) serves."""
    return WebManifest(
        static_files=served_static_files(static_dir),
        content_security_policy=CONTENT_SECURITY_POLICY,
    )
