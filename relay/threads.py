"""Conversations on the offline machine: one folder per thread, in OUT_DIR.

``tiprelay decrypt`` of a bundle files each tip that carries conversation fields
(``submission.json`` ``"conversation"``) under the thread of its conversation
id, and each reply it can read under the same thread; ``tiprelay reply`` adds
the replies written here. The layout::

    OUT_DIR/<day>-<id>/                       a one-off tip (as before)
    OUT_DIR/conversation-<id>/                one conversation (32 hex: its id)
        thread.txt                            the thread in order, n and day, gaps flagged
        <day>-<submission id>/                a tip or follow-up, extracted
        reply-<nnnn>/                         a reply the relay holds (pulled, checked)
        outgoing-<outbox entry>/              a reply written here, not yet seen pulled
        not-delivered-<outbox entry>/         one the relay refused (slot taken): reply again

A reply folder holds ``message.txt``, ``files/`` and ``reply.json`` (the checked
metadata, plus the ciphertext's SHA-256 that ties it to the bundle). The
conversation id never leaves this machine: the bundle and the outbox do not
name it.

Offline code: nothing here imports aiohttp.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.container.names import NameAllocator
from relay.conversation.derivation import (
    CODENAME_FIELDS,
    ConversationFieldsError,
    ReplyKeys,
    reply_keys_from_fields,
)
from relay.conversation.reply import Reply
from relay.errors import TiprelayError

THREAD_PREFIX = "conversation-"
REPLY_PREFIX = "reply-"
OUTGOING_PREFIX = "outgoing-"
NOT_DELIVERED_PREFIX = "not-delivered-"
THREAD_LISTING = "thread.txt"
REPLY_META = "reply.json"
_TIP_FOLDER = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9a-f]{32}")
_MAX_META_BYTES = 64 * 1024
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ThreadError(TiprelayError):
    """A thread cannot be found or read."""


@dataclass(frozen=True)
class ThreadReply:
    """A reply of the thread: pulled from the relay, or written here."""

    n: int
    day: str
    sha256: str
    folder: Path
    outbox_entry: str | None = None
    """The outbox file name, for a reply written here and not yet seen pulled."""


@dataclass
class Thread:
    """One conversation as the offline machine holds it."""

    conversation_id: str
    folder: Path
    keys: ReplyKeys | None = None
    tips: list[tuple[str, str]] = field(default_factory=list)
    """(day, submission id) of each tip and follow-up."""
    replies: list[ThreadReply] = field(default_factory=list)
    not_delivered: list[Path] = field(default_factory=list)
    """Replies written here that push found their slot taken for (never on the relay)."""

    def gaps(self) -> list[int]:
        """Reply numbers below the highest one that this machine has never seen."""
        known = {reply.n for reply in self.replies}
        return [n for n in range(1, max(known, default=0)) if n not in known]

    def listing(self) -> list[str]:
        """The thread in order: by day (nothing finer exists), tips before replies."""
        rows: list[tuple[str, int, str]] = []
        for day, submission_id in self.tips:
            rows.append((day, 0, f"{day}  tip        {day}-{submission_id}/"))
        for reply in sorted(self.replies, key=lambda r: r.n):
            state = (
                "written here, in the outbox or sent, not yet pulled back"
                if reply.outbox_entry
                else "on the relay"
            )
            line = f"{reply.day}  reply n={reply.n:<3} {reply.folder.name}/ ({state})"
            rows.append((reply.day, 1, line))
        lines = [row[2] for row in sorted(rows, key=lambda row: (row[0], row[1]))]
        lines += [
            f"NOT DELIVERED: {folder.name}/ (its slot was taken first; the source never "
            "saw it; reply again if it still matters)"
            for folder in self.not_delivered
        ]
        lines += [
            f"GAP: reply n={n} is missing (deleted by the source after reading, replaced "
            "in the ring, or not pulled yet)"
            for n in self.gaps()
        ]
        return lines


def thread_folder(out_dir: Path, conversation_id: str) -> Path:
    return out_dir / f"{THREAD_PREFIX}{conversation_id}"


def tip_conversation(meta: dict[str, Any]) -> ReplyKeys | None:
    """The reply keys a tip's ``submission.json`` carries; None for a one-off tip.

    A tip sent from a browser carries them derived; one sent without JavaScript
    carries its codename, derived here (~0.2 s, once per codename and process).
    Raises ConversationFieldsError when the fields are there but damaged.
    """
    fields = meta.get("conversation")
    if fields is None:
        return None
    return reply_keys_from_fields(fields)


def carries_codename(meta: dict[str, Any]) -> bool:
    """Whether the tip's ``conversation`` object is a sealed codename (no-JS form)."""
    fields = meta.get("conversation")
    return isinstance(fields, dict) and set(fields) == CODENAME_FIELDS


def replace_codename_with_keys(folder: Path, meta: dict[str, Any], keys: ReplyKeys) -> None:
    """Rewrite an extracted tip's ``submission.json`` with the derived fields in place of
    the codename, so that the codename is kept only inside the tip's age file."""
    rewritten = {**meta, "conversation": keys.to_fields()}
    path = folder / "submission.json"
    staging = path.with_name(".submission.json.partial")
    text = json.dumps(rewritten, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    mode = path.stat().st_mode & 0o777
    with os.fdopen(os.open(staging, _NEW_FILE_FLAGS, mode), "wb") as out:
        out.write(text.encode())
    os.replace(staging, path)


def _read_json(path: Path) -> Any:
    with path.open("rb") as handle:
        raw = handle.read(_MAX_META_BYTES + 1)
    if len(raw) > _MAX_META_BYTES:
        raise ThreadError(f"{path} is too large.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ThreadError(f"{path} is not valid JSON.") from None


def read_thread(folder: Path) -> Thread:
    """The thread stored in ``folder`` (tips, replies, the keys from its tips)."""
    thread = Thread(folder.name.removeprefix(THREAD_PREFIX), folder)
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        if _TIP_FOLDER.fullmatch(entry.name):
            thread.tips.append((entry.name[:10], entry.name[11:]))
            meta_path = entry / "submission.json"
            if thread.keys is None and meta_path.is_file():
                try:
                    keys = tip_conversation(_read_json(meta_path))
                except (ConversationFieldsError, ThreadError):
                    keys = None
                if keys is not None and keys.conversation_id.hex() == thread.conversation_id:
                    thread.keys = keys
        elif entry.name.startswith(NOT_DELIVERED_PREFIX):
            thread.not_delivered.append(entry)
        elif entry.name.startswith((REPLY_PREFIX, OUTGOING_PREFIX)):
            try:
                meta = _read_json(entry / REPLY_META)
                outgoing = entry.name.startswith(OUTGOING_PREFIX)
                found = ThreadReply(
                    int(meta["n"]),
                    str(meta["day"]),
                    str(meta["ciphertext_sha256"]),
                    entry,
                    str(meta["outbox_entry"]) if outgoing else None,
                )
            except (ThreadError, OSError, KeyError, TypeError, ValueError):
                continue  # not a folder tiprelay wrote: leave it alone
            thread.replies.append(found)
    return thread


def read_threads(out_dir: Path) -> list[Thread]:
    """Every thread under ``out_dir``, by conversation id."""
    if not out_dir.is_dir():
        return []
    return [
        read_thread(folder)
        for folder in sorted(out_dir.glob(THREAD_PREFIX + "*"))
        if folder.is_dir() and not folder.is_symlink()
    ]


def find_tip_folder(out_dir: Path, folder_name: str) -> Path | None:
    """Where a tip's extracted folder is now: OUT_DIR itself or a thread folder."""
    direct = out_dir / folder_name
    if direct.is_dir():
        return direct
    for candidate in out_dir.glob(f"{THREAD_PREFIX}*/{folder_name}"):
        if candidate.is_dir():
            return candidate
    return None


def thread_of_submission(out_dir: Path, submission_id: str) -> Thread:
    """The thread holding the tip ``submission_id`` (decrypted already), or ThreadError."""
    for candidate in out_dir.glob(f"{THREAD_PREFIX}*/*-{submission_id}"):
        if candidate.is_dir() and _TIP_FOLDER.fullmatch(candidate.name):
            thread = read_thread(candidate.parent)
            if thread.keys is None:
                raise ThreadError(f"The tips of {candidate.parent} carry no usable reply keys.")
            return thread
    if any(out_dir.glob(f"*-{submission_id}")):
        raise ThreadError(
            f"Submission {submission_id} was sent without a codename: the source cannot "
            "read replies to it."
        )
    raise ThreadError(f"No submission {submission_id} in {out_dir}; is the id right?")


def save_reply(
    thread_dir: Path,
    folder_name: str,
    reply: Reply,
    ciphertext_sha256: str,
    outbox_entry: str | None = None,
) -> Path:
    """Write a checked (or just written) reply's plaintext into the thread, all or nothing."""
    dest = thread_dir / folder_name
    staging = Path(tempfile.mkdtemp(prefix=f".{folder_name}.partial-", dir=thread_dir))
    try:
        (staging / "message.txt").write_text(reply.message, encoding="utf-8")
        names = NameAllocator()
        stored = []
        if reply.attachments:
            (staging / "files").mkdir()
        for attachment in reply.attachments:
            name = names.allocate(attachment.name)
            (staging / "files" / name).write_bytes(attachment.data)
            stored.append(name)
        meta: dict[str, object] = {
            "n": reply.n,
            "day": reply.day,
            "files": stored,
            "ciphertext_sha256": ciphertext_sha256,
        }
        if outbox_entry is not None:
            meta["outbox_entry"] = outbox_entry
        (staging / REPLY_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def mark_not_delivered(thread: Thread, refused_entries: set[str]) -> None:
    """Rename the outgoing replies whose outbox entry push moved to ``conflicted/``."""
    for reply in list(thread.replies):
        if reply.outbox_entry is not None and reply.outbox_entry in refused_entries:
            target = thread.folder / (
                NOT_DELIVERED_PREFIX + reply.folder.name.removeprefix(OUTGOING_PREFIX)
            )
            reply.folder.rename(target)
            thread.replies.remove(reply)
            thread.not_delivered.append(target)


def write_listing(thread: Thread) -> None:
    """Rewrite ``thread.txt`` from what the folder holds."""
    text = "\n".join(
        [f"Conversation {thread.conversation_id}", *thread.listing()]
    ) + "\n"
    (thread.folder / THREAD_LISTING).write_text(text, encoding="utf-8")
