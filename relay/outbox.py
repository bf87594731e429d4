"""The outbox: replies written offline, waiting in the bundle to be pushed.

``tiprelay reply`` (offline) writes one file per reply into
``BUNDLE_DIR/outbox/<32 random hex>.json``; ``tiprelay push`` (online) uploads
each and moves it to ``sent/`` once the relay stored it, or to ``conflicted/``
when the slot changed since the pull (then: pull, then reply again). A file
holds exactly what the relay needs and nothing that names the conversation:

    {"format": "tiprelay-outbox-1", "tag": <slot tag hex>,
     "expects": "empty" | <sha256 hex of what the slot held at the pull>,
     "delete_token_hash": <sha256 hex>, "ciphertext": <base64 age file>}

No codename, key, conversation or submission id, and no plaintext: the bundle
travels on USB and sits on the online machine. The random name is the entry's
only link to the reviewer's own plaintext copy (kept in the thread folder).

Offline code: nothing here imports aiohttp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from relay.errors import TiprelayError
from relay.files import fsync_directory
from relay.manifest import write_file_atomically

OUTBOX_DIR = "outbox"
SENT_DIR = "sent"
CONFLICTED_DIR = "conflicted"
OUTBOX_FORMAT = "tiprelay-outbox-1"
EMPTY_SLOT = "empty"
MAX_OUTBOX_ENTRY_BYTES = 32 * 1024 * 1024
"""A 16 MiB reply in base64 plus room; far above ``max_reply_bytes``."""
_ENTRY_NAME = re.compile(r"[0-9a-f]{32}\.json")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class OutboxError(TiprelayError):
    """An outbox file is damaged; remove it and reply again."""


@dataclass(frozen=True)
class OutboxEntry:
    """One reply ready to upload."""

    tag: str
    expects: str
    delete_token_hash: str
    ciphertext: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.ciphertext).hexdigest()

    def to_bytes(self) -> bytes:
        document = {
            "format": OUTBOX_FORMAT,
            "tag": self.tag,
            "expects": self.expects,
            "delete_token_hash": self.delete_token_hash,
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes, where: Path) -> OutboxEntry:
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("format") != OUTBOX_FORMAT:
                raise ValueError
            tag, expects = document["tag"], document["expects"]
            token_hash = document["delete_token_hash"]
            ciphertext = base64.b64decode(document["ciphertext"], validate=True)
            if not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in (tag, token_hash)):
                raise ValueError
            valid_hash = isinstance(expects, str) and _HEX64.fullmatch(expects)
            if expects != EMPTY_SLOT and not valid_hash:
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise OutboxError(
                f"{where} is not an outbox entry; remove it and reply again."
            ) from None
        return cls(tag, expects, token_hash, ciphertext)


def write_outbox_entry(bundle_dir: Path, entry: OutboxEntry) -> str:
    """Put ``entry`` into the outbox under a fresh random name; that name."""
    folder = bundle_dir / OUTBOX_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    name = secrets.token_hex(16) + ".json"
    write_file_atomically(folder / name, entry.to_bytes())
    return name


def read_outbox_entry(path: Path) -> OutboxEntry:
    with path.open("rb") as handle:
        raw = handle.read(MAX_OUTBOX_ENTRY_BYTES + 1)
    if len(raw) > MAX_OUTBOX_ENTRY_BYTES:
        raise OutboxError(f"{path} is larger than any reply; remove it.")
    return OutboxEntry.from_bytes(raw, path)


def entry_names(bundle_dir: Path, folder: str) -> list[str]:
    """The entries in ``outbox``/``sent``/``conflicted``, oldest first."""
    directory = bundle_dir / folder
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _ENTRY_NAME.fullmatch(p.name) and p.is_file()]
    found.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [p.name for p in found]


def move_entry(bundle_dir: Path, name: str, to_folder: str) -> None:
    """Move an outbox entry to ``sent`` or ``conflicted`` (atomic rename, synced)."""
    target = bundle_dir / to_folder
    target.mkdir(mode=0o700, exist_ok=True)
    os.replace(bundle_dir / OUTBOX_DIR / name, target / name)
    fsync_directory(target)
    fsync_directory(bundle_dir / OUTBOX_DIR)
