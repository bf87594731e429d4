"""Reading a pulled bundle on the offline machine: verify, decrypt, extract safely.

For each submission in ``manifest.json``, ``decrypt_bundle`` reads ``<id>.age``
once, hashing the ciphertext as it decrypts it (so the file is read a single
time), extracts the plaintext archive with ``relay.container.extract_submission``
into ``OUT_DIR/<day>-<id>/`` and keeps it only if the SHA-256 matches the
manifest too. One submission's damage, hostility or foreign key never stops
the others. A folder that already exists means that submission was decrypted
before (extraction renames the folder into place only when complete): skipped.

Conversations (``relay.threads``): a tip whose ``submission.json`` carries
conversation fields moves into ``OUT_DIR/conversation-<id>/``. A tip sent
without JavaScript carries its source's codename instead: it is derived here
(once per codename in a run) and the extracted ``submission.json`` gets the
derived fields in its place, so the codename stays only inside the age file. Then every reply
the bundle holds (``replies/<sha256>.age``) is decrypted with the reviewer's
identity (replies are encrypted to the team too), matched to a thread by its
slot tag, checked with ``read_reply`` (MAC, conversation, slot, entries) and
written into that thread as ``reply-<n>/``. Each thread's ``thread.txt`` lists
tips and replies with n and day, gaps flagged.

The library returns a ``BundleReport``; the CLI prints ``summary_lines``.

Offline code: nothing here imports aiohttp (import-linter checks it).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from relay.container import extract_submission
from relay.conversation.derivation import ConversationFieldsError
from relay.conversation.reply import ReplyError, ReplyLimits, read_reply
from relay.conversation.slots import DEFAULT_RING_SIZE, ring_tags, slot_of_reply
from relay.crypto.decrypt import decrypt_bytes, open_decrypted
from relay.crypto.errors import AgeError, NoIdentityMatchError
from relay.crypto.openpgp_gpg import GpgSetupError
from relay.crypto.unwrap import Identity
from relay.errors import ContainerError
from relay.files import HASH_CHUNK_BYTES, NotARegularFileError, open_regular_file
from relay.manifest import (
    MANIFEST_NAME,
    ManifestError,
    ReplyInfo,
    SubmissionInfo,
    human_size,
    read_manifest,
    read_reply_state,
)
from relay.outbox import CONFLICTED_DIR, entry_names
from relay.threads import (
    REPLY_META,
    REPLY_PREFIX,
    Thread,
    carries_codename,
    find_tip_folder,
    mark_not_delivered,
    read_threads,
    replace_codename_with_keys,
    save_reply,
    thread_folder,
    tip_conversation,
    write_listing,
)

DECRYPTED = "decrypted"
ALREADY_DECRYPTED = "already decrypted"
DAMAGED = "damaged"
NOT_FOR_IDENTITY = "not for this identity"
REFUSED = "refused"
MISSING = "missing"
_UNREADABLE = (DAMAGED, NOT_FOR_IDENTITY, REFUSED, MISSING)


@dataclass(frozen=True)
class SubmissionOutcome:
    """What happened to one submission of the bundle."""

    info: SubmissionInfo
    status: str
    folder: Path | None = None
    files: int = 0
    size: int = 0
    detail: str = ""
    notes: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        """Whether its plaintext is in OUT_DIR now."""
        return self.status not in _UNREADABLE


@dataclass
class BundleReport:
    """Every submission's outcome, plus files the manifest does not list."""

    outcomes: list[SubmissionOutcome] = field(default_factory=list)
    unlisted_files: list[str] = field(default_factory=list)
    threads: list[Thread] = field(default_factory=list)
    new_replies: int = 0
    reply_problems: list[str] = field(default_factory=list)
    """One line per pulled reply that could not be read or placed."""

    @property
    def all_readable(self) -> bool:
        return all(outcome.readable for outcome in self.outcomes)


class _OrderedHasher:
    """SHA-256 computed on a helper thread, pieces in order, at most a few pieces behind.

    hashlib releases the GIL, so the hash runs beside the decryption instead of
    adding to the reading thread's work (which bounds a bundle's throughput).
    Each piece is copied into one of a few recycled buffers, since the reader
    reuses its own at once.
    """

    _MAX_PENDING = 2
    _pool: ThreadPoolExecutor | None = None

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: deque[tuple[Future[None], bytearray]] = deque()
        self._spare: list[bytearray] = []

    def update(self, data: memoryview | bytes) -> None:
        if len(self._pending) >= self._MAX_PENDING:
            done, buffer = self._pending.popleft()
            done.result()
            self._spare.append(buffer)
        buffer = self._spare.pop() if self._spare else bytearray()
        if len(buffer) < len(data):
            buffer = bytearray(len(data))
        piece = memoryview(buffer)[: len(data)]
        piece[:] = data
        if _OrderedHasher._pool is None:
            # One worker: the pieces are hashed in the order they were submitted.
            _OrderedHasher._pool = ThreadPoolExecutor(1, thread_name_prefix="bundle-sha256")
        self._pending.append((_OrderedHasher._pool.submit(self._digest.update, piece), buffer))

    def hexdigest(self) -> str:
        while self._pending:
            self._pending.popleft()[0].result()
        return self._digest.hexdigest()


class _HashingReader(io.RawIOBase):
    """Reads ``source`` and hashes every byte handed out, for a single pass over the file."""

    def __init__(self, source: io.RawIOBase) -> None:
        self._source = source
        self._hasher = _OrderedHasher()

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(target).cast("B")
        count = self._source.readinto(view) or 0
        if count:
            self._hasher.update(view[:count])
        return count

    def finish_digest(self) -> str:
        """Hash whatever is still unread, and return the file's hex SHA-256."""
        while chunk := self._source.read(HASH_CHUNK_BYTES):
            self._hasher.update(chunk)
        return self._hasher.hexdigest()


def output_folder(out_dir: Path, info: SubmissionInfo) -> Path:
    """``OUT_DIR/<day>-<id>``: sorts by day; id and day are validated by the manifest."""
    return out_dir / f"{info.day}-{info.id}"


def decrypt_bundle(
    bundle_dir: Path,
    out_dir: Path,
    identities: Sequence[Identity],
    *,
    ring_size: int = DEFAULT_RING_SIZE,
    reply_limits: ReplyLimits | None = None,
) -> BundleReport:
    """Decrypt every submission of ``bundle_dir`` into ``out_dir``; see the module docstring."""
    if not (bundle_dir / MANIFEST_NAME).is_file():
        raise ManifestError(
            f"{bundle_dir} has no {MANIFEST_NAME}; it is not a bundle made by `tiprelay pull`."
        )
    entries = read_manifest(bundle_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    report = BundleReport()
    for info in sorted(entries.values(), key=lambda entry: (entry.day, entry.id)):
        report.outcomes.append(_decrypt_one(bundle_dir, out_dir, info, identities))
    report.unlisted_files = sorted(
        path.name
        for path in bundle_dir.glob("*.age")
        if path.name.removesuffix(".age") not in entries
    )
    _decrypt_replies(bundle_dir, out_dir, identities, ring_size, reply_limits, report)
    report.threads = read_threads(out_dir)
    refused = set(entry_names(bundle_dir, CONFLICTED_DIR))
    for thread in report.threads:
        mark_not_delivered(thread, refused)
        write_listing(thread)
    return report


def _decrypt_replies(
    bundle_dir: Path,
    out_dir: Path,
    identities: Sequence[Identity],
    ring_size: int,
    limits: ReplyLimits | None,
    report: BundleReport,
) -> None:
    """Place every pulled reply into its thread, checked; see the module docstring."""
    state = read_reply_state(bundle_dir)
    if not state.pulled:
        return
    limits = limits or ReplyLimits()
    threads = read_threads(out_dir)
    by_tag: dict[str, tuple[Thread, int]] = {}
    placed: dict[str, str] = {}  # ciphertext SHA-256 -> the tag it was filed from
    for thread in threads:
        if thread.keys is None:
            continue
        tags = [tag.hex() for tag in ring_tags(thread.keys.slot_key, ring_size)]
        for slot, tag in enumerate(tags):
            by_tag[tag] = (thread, slot)
        for reply in thread.replies:
            if reply.outbox_entry is None:
                placed[reply.sha256] = tags[slot_of_reply(reply.n, ring_size)]
    # Every (slot, ciphertext) seen: a copy of a reply in another slot is checked too.
    candidates = {(info.tag, info.sha256): info for info in state.pulled.values()}
    for tag, digest in state.slots.items():
        if digest in state.pulled and (tag, digest) not in candidates:
            candidates[tag, digest] = replace(state.pulled[digest], tag=tag)
    for (tag, digest), info in sorted(candidates.items()):
        if placed.get(digest) == tag:
            continue  # filed by an earlier decrypt
        if tag not in by_tag:
            continue  # a conversation none of this bundle's tips opened
        thread, slot = by_tag[tag]
        problem = _place_reply(bundle_dir, info, thread, slot, identities, ring_size, limits)
        if problem:
            report.reply_problems.append(f"reply {digest[:12]} ({info.day}): {problem}")
        else:
            placed[digest] = tag
            report.new_replies += 1


_AGE_OVERHEAD_BYTES = 64 * 1024
"""Header and tags an age file adds to a reply of ``max_reply_bytes``, with room."""


def _read_at_most(source: io.RawIOBase, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = source.read(min(HASH_CHUNK_BYTES, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _place_reply(
    bundle_dir: Path,
    info: ReplyInfo,
    thread: Thread,
    slot: int,
    identities: Sequence[Identity],
    ring_size: int,
    limits: ReplyLimits,
) -> str | None:
    """Decrypt, check and write one reply; why it could not be, or None."""
    assert thread.keys is not None
    path = bundle_dir / info.file_name
    limit = limits.max_reply_bytes + _AGE_OVERHEAD_BYTES
    try:
        with open_regular_file(path) as source:
            ciphertext = _read_at_most(source, limit + 1)
    except OSError:  # NotARegularFileError included: a FIFO is never read
        return "its file is not in the bundle, or not a regular file"
    if len(ciphertext) > limit:
        return "its file is larger than any reply; not read"
    if hashlib.sha256(ciphertext).hexdigest() != info.sha256:
        return "the file does not match its SHA-256 in manifest.json; pull again"
    try:
        plaintext = decrypt_bytes(ciphertext, identities)
    except NoIdentityMatchError:
        return "it is not encrypted to this identity: it was not written to this team"
    except GpgSetupError as exc:
        # This machine's gpg (passphrase, card, pinentry), not this reply: stop.
        raise type(exc)(f"{exc} (while opening a reply)") from None
    except AgeError as exc:
        return f"it is damaged ({exc})"
    try:
        reply = read_reply(
            plaintext,
            auth_key=thread.keys.auth_key,
            conversation_id=thread.keys.conversation_id,
            slot=slot,
            ring_size=ring_size,
            limits=limits,
        )
    except ReplyError as exc:
        return f"NOT AUTHENTIC or damaged, not shown ({exc.kind})"
    for existing in thread.replies:
        if existing.sha256 == info.sha256 and existing.outbox_entry is not None:
            # Written on this machine and now seen on the relay: delivered.
            target = thread.folder / f"{REPLY_PREFIX}{reply.n:04d}"
            if target.exists():
                target = thread.folder / f"{REPLY_PREFIX}{reply.n:04d}-{info.sha256[:8]}"
            # Renamed first: a crash between the two steps leaves a reply-* folder,
            # which threads read whatever its reply.json still says.
            existing.folder.rename(target)
            meta_path = target / REPLY_META
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta.pop("outbox_entry", None)
            meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            return None
    name = f"{REPLY_PREFIX}{reply.n:04d}"
    if (thread.folder / name).exists():
        name += f"-{info.sha256[:8]}"
    save_reply(thread.folder, name, reply, info.sha256)
    return None


def _decrypt_one(
    bundle_dir: Path, out_dir: Path, info: SubmissionInfo, identities: Sequence[Identity]
) -> SubmissionOutcome:
    folder = output_folder(out_dir, info)
    existing = find_tip_folder(out_dir, folder.name)
    if existing is not None:
        files, size = _count_extracted(existing)
        return SubmissionOutcome(info, ALREADY_DECRYPTED, existing, files, size)
    source_path = bundle_dir / info.file_name
    try:
        source = open_regular_file(source_path)
    except FileNotFoundError:
        return SubmissionOutcome(info, MISSING, detail="its .age file is not in the bundle")
    except NotARegularFileError as exc:
        # A FIFO would block the whole bundle forever, a device might never end.
        return SubmissionOutcome(
            info, REFUSED, detail=f"{exc}, not a regular file; refused without reading it"
        )
    except OSError as exc:
        return SubmissionOutcome(
            info, MISSING, detail=f"its .age file cannot be opened ({exc.strerror})"
        )
    # Extracted under a hidden name first, made final only once its submission.json
    # holds no codename (below): an interrupted run leaves no codename in a case
    # folder, and the next run, finding no final folder, decrypts the tip again.
    unfinished = folder.with_name(f".{folder.name}.unfinished")
    shutil.rmtree(unfinished, ignore_errors=True)  # left by a run killed outright
    try:
        return _extract_and_file(source, unfinished, folder, out_dir, info, identities)
    except BaseException:
        shutil.rmtree(unfinished, ignore_errors=True)
        raise


def _extract_and_file(
    source: io.FileIO,
    unfinished: Path,
    folder: Path,
    out_dir: Path,
    info: SubmissionInfo,
    identities: Sequence[Identity],
) -> SubmissionOutcome:
    with source:
        hashing = _HashingReader(source)
        try:
            plaintext = open_decrypted(hashing, identities)  # type: ignore[arg-type]
            extracted = extract_submission(plaintext, unfinished)
        except NoIdentityMatchError:
            if hashing.finish_digest() != info.sha256:  # a damaged stanza looks foreign too
                return SubmissionOutcome(info, DAMAGED, detail=_damage_detail(True, None))
            return SubmissionOutcome(info, NOT_FOR_IDENTITY, detail=_not_for_me_detail())
        except GpgSetupError as exc:
            # A wrong PIN or an absent card is not damage: stop, and say where.
            raise type(exc)(f"{exc} (while opening submission {info.id})") from None
        except AgeError as exc:
            damaged_in_transit = hashing.finish_digest() != info.sha256
            return SubmissionOutcome(info, DAMAGED, detail=_damage_detail(damaged_in_transit, exc))
        except ContainerError as exc:
            return SubmissionOutcome(info, REFUSED, detail=f"{exc} Nothing was written for it.")
        if hashing.finish_digest() != info.sha256:
            # Authentic age data, yet not the file the relay listed: swapped or the
            # manifest was edited. Do not keep a plaintext of unknown origin.
            shutil.rmtree(unfinished, ignore_errors=True)
            return SubmissionOutcome(info, DAMAGED, detail=_damage_detail(True, None))
    sealed_inside = extracted.meta.get("sealed_by")
    notes = list(extracted.warnings)
    try:
        keys = tip_conversation(extracted.meta)
    except ConversationFieldsError as exc:
        keys = None
        notes.append(f"its conversation fields are unusable ({exc}); no reply is possible")
    if keys is not None:
        if carries_codename(extracted.meta):
            replace_codename_with_keys(unfinished, extracted.meta, keys)
        thread_dir = thread_folder(out_dir, keys.conversation_id.hex())
        thread_dir.mkdir(mode=0o700, exist_ok=True)
        folder = unfinished.rename(thread_dir / folder.name)
    else:
        folder = unfinished.rename(folder)
    if sealed_inside != info.sealed_by:
        notes.append(
            f"the archive says sealed_by={sealed_inside!s:.20}, the relay said {info.sealed_by}"
        )
    return SubmissionOutcome(
        info,
        DECRYPTED,
        folder,
        files=len(extracted.files),
        size=extracted.message_size + sum(size for _, size in extracted.files),
        notes=tuple(notes),
    )


def _not_for_me_detail() -> str:
    return "it is not encrypted to this identity (another reviewer's key may read it)"


def _damage_detail(hash_mismatch: bool, exc: AgeError | None) -> str:
    if hash_mismatch:
        return (
            "the file does not match its SHA-256 in manifest.json; "
            "copy it again from the online machine (or pull again)"
        )
    return (
        f"{exc} The file matches the manifest, so it was already like this on the relay "
        "(damaged there, or sent that way)."
    )


def _count_extracted(folder: Path) -> tuple[int, int]:
    files_dir = folder / "files"
    files = list(filter(Path.is_file, files_dir.iterdir())) if files_dir.is_dir() else []
    message = folder / "message.txt"
    size = sum(entry.stat().st_size for entry in files)
    size += message.stat().st_size if message.is_file() else 0
    return len(files), size


def summary_lines(report: BundleReport) -> list[str]:
    """The table (id, day, files, size, sealed_by, status) and one warning line per problem."""
    lines = [f"{'ID':32}  {'DAY':10}  {'FILES':>5}  {'SIZE':>10}  {'SEALED BY':9}  STATUS"]
    for outcome in report.outcomes:
        info = outcome.info
        files = str(outcome.files) if outcome.readable else "-"
        size = human_size(outcome.size) if outcome.readable else "-"
        lines.append(
            f"{info.id:32}  {info.day:10}  {files:>5}  {size:>10}  {info.sealed_by:9}  "
            f"{outcome.status}"
        )
    for outcome in report.outcomes:
        if not outcome.readable:
            lines.append(f"WARNING: {outcome.info.id} {outcome.status}: {outcome.detail}")
        elif outcome.info.sealed_by == "server":
            lines.append(
                f"WARNING: {outcome.info.id} was sealed by the server (sent without JavaScript): "
                "the relay saw its plaintext while encrypting it."
            )
        lines.extend(f"NOTE: {outcome.info.id}: {note}" for note in outcome.notes)
    for name in report.unlisted_files:
        lines.append(f"WARNING: {name} is not listed in manifest.json; skipped.")
    lines.extend(thread_summary_lines(report))
    return lines


def thread_summary_lines(report: BundleReport) -> list[str]:
    """Each conversation: its folder, then its tips and replies in order, gaps flagged."""
    lines: list[str] = []
    if report.threads:
        lines.append(f"{len(report.threads)} conversation(s); {report.new_replies} new reply(ies):")
    for thread in report.threads:
        lines.append(f"  {thread.folder.name}/")
        lines.extend(f"    {line}" for line in thread.listing())
    lines.extend(f"WARNING: {problem}" for problem in report.reply_problems)
    return lines


def closing_line(report: BundleReport, out_dir: Path) -> str:
    readable = sum(outcome.readable for outcome in report.outcomes)
    return f"{readable} of {len(report.outcomes)} submission(s) readable in {out_dir}."

