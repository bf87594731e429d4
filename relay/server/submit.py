"""``POST /submit``: the no-JavaScript path. The server seals while it streams.

The multipart body is read part by part with aiohttp's ``MultipartReader``
(never ``request.post()``, which would buffer it, and never a plaintext
temporary file). The message stays in memory (it is small and bounded),
and so do attachments while the submission's attachments total at most
``IN_MEMORY_ATTACHMENT_BYTES``; beyond that each is spooled through an
``EphemeralSpool`` (encrypted on disk), because the tar header needs its size
before its data. A codename (a tip that opens or continues a conversation) is
sealed as its 7 word indices, not derived: the relay acknowledges a tip without
spending a derivation on it. Then ``sealing.seal_submission`` turns it into one age file
in a worker thread, holding one of ``max_concurrent_submissions`` sealing
slots (receiving holds none: a body that trickles in is cut off by
``upload_pace.body_pace`` instead), and the source is sent to the receipt page
(POST/redirect/GET, so that reloading the page cannot send it twice).

Every limit is checked while the data arrives, so a refusal costs at most the
limit; and since nothing exists until the store's ``commit()``, a refused,
truncated or abandoned upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import shutil
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    content_disposition_filename,
    parse_content_disposition,
)

from relay.activity import activity
from relay.config import Config
from relay.conversation.codename import Codename
from relay.conversation.derivation import codename_fields
from relay.crypto.openpgp_gpg import GpgError
from relay.crypto.spool import EphemeralSpool
from relay.errors import StorageFullError
from relay.log import get_logger
from relay.server import i18n
from relay.server.appkeys import CONFIG, KEYRING, RECEIVE_MEMORY, STORE, SUBMISSION_SLOTS
from relay.server.codenames import (
    CODENAME_FIELD,
    CODENAME_FIELD_MAX_BYTES,
    read_typed_codename,
    relay_salt,
)
from relay.server.problems import (
    CANNOT_ENCRYPT,
    EMPTY_SUBMISSION,
    INVALID_TEXT,
    MALFORMED_FORM,
    MESSAGE_TOO_LONG,
    RELAY_BUSY,
    SERVER_SEALING_OFF,
    STORAGE_FULL,
    SUBMISSION_TOO_LARGE,
    TOO_MANY_FILES,
    UPLOAD_TOO_SLOW,
    SourceProblem,
)
from relay.server.receive_memory import ReceiveMemoryFull
from relay.server.rendering import LANGUAGE
from relay.server.sealing import (
    InMemoryBody,
    ReceivedAttachment,
    ReceivedSubmission,
    seal_submission,
)
from relay.server.source_views import RECEIVED_PATH, received_page
from relay.server.upload_pace import IDLE, SLOW, TOTAL, BodyTooSlow, PaceLimits, body_pace

READ_CHUNK_BYTES = 256 * 1024
SPOOL_WRITE_BYTES = 1024 * 1024
"""Attachment data is handed to a worker thread in pieces this big."""
IN_MEMORY_ATTACHMENT_BYTES = 1024 * 1024
"""Per submission: small attachments stay in memory (a spool costs a file and
its buffers); anything beyond goes to an ``EphemeralSpool``."""
DISK_CHECK_INTERVAL_BYTES = 64 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Room for boundaries and part headers on top of the payload limit."""
PART_OVERHEAD_BYTES = 8 * 1024
LANGUAGE_FIELD_MAX_BYTES = 32
LANGUAGE_PEEK_SECONDS = 2.0
LANGUAGE_PEEK_READ_BYTES = 128
"""How long a refusal waits for the form's first field, to answer in its language."""
DISK_CHECK_MAX_AGE_SECONDS = 0.5
"""Free space is asked of the OS at most this often (statvfs costs more than the rest
of a small submission); the reserve is the margin for what arrives in between."""

# What a broken, truncated or hostile body makes aiohttp's reader raise.
_MALFORMED_BODY_ERRORS = (
    ValueError,
    RuntimeError,
    AssertionError,
    LookupError,
    HttpProcessingError,
    ConnectionError,
    EOFError,
)

_log = get_logger("relay.server.submit")


async def submit(request: web.Request) -> web.StreamResponse:
    """Receive a no-JS submission, seal it to every reviewer, redirect to the receipt."""
    config = request.app[CONFIG]
    try:
        if not config.server_sealing_enabled:
            raise SourceProblem(SERVER_SEALING_OFF)
        _check_declared_size(request, config)
        _check_free_disk(config, needed=2 * (request.content_length or 0))
    except SourceProblem:
        await _adopt_form_language(request)
        raise
    return await _receive_and_seal(request, config)


# Counter names for a body cut off by each pace limit (relay.server.upload_pace).
_SLOW_BODY_EVENTS = {
    IDLE: "submission_refused_idle",
    SLOW: "submission_refused_slow",
    TOTAL: "submission_refused_timeout",
}


async def _receive_and_seal(request: web.Request, config: Config) -> web.StreamResponse:
    """Read the form within every limit, seal it, and redirect to the receipt.

    Receiving takes no sealing slot: a sender that trickles its form costs a
    connection and the few bytes it sent, until ``body_pace`` cuts it off.
    """
    with contextlib.ExitStack() as spools:
        try:
            async with body_pace(request.content, PaceLimits.from_config(config)):
                submission = await _receive(request, config, spools)
        except BodyTooSlow as slow:
            activity.count(_SLOW_BODY_EVENTS[slow.reason])
            raise SourceProblem(UPLOAD_TOO_SLOW) from None
        except _MALFORMED_BODY_ERRORS as error:
            activity.count("submission_refused_malformed")
            _log.debug("submission.refused.malformed", error_type=type(error).__name__)
            raise SourceProblem(MALFORMED_FORM) from None
        if submission.is_empty:
            raise SourceProblem(EMPTY_SUBMISSION)
        shown_codename = None if submission.codename is None else str(submission.codename)
        if submission.codename is not None:
            # No derivation here: the codename's indices are sealed to the team,
            # whose offline machine derives (docs/conversations.md section 4).
            submission.conversation = codename_fields(
                submission.codename, relay_salt(request.app)
            )
            submission.codename = None
        _check_free_disk(config, needed=sum(a.body.size for a in submission.attachments))
        async with _sealing_slot(request, config):
            recipients = request.app[KEYRING].sealing_recipients()
            if not recipients:
                # Every reviewer's key has expired: the operator's log says so
                # (relay.server.app); a daily total here, never a line per tip.
                activity.count("submission_refused_no_usable_key")
                raise SourceProblem(CANNOT_ENCRYPT)
            try:
                await asyncio.to_thread(
                    seal_submission, request.app[STORE], recipients, submission
                )
            except StorageFullError:
                raise SourceProblem(STORAGE_FULL) from None
            except GpgError:
                # gpg would not encrypt to a reviewer's key (expired between the
                # check and the seal, say): nothing was stored. A daily total, as
                # for every source event: a timestamped line would date the tip.
                activity.count("submission_refused_openpgp_wrap")
                raise SourceProblem(CANNOT_ENCRYPT) from None
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise SourceProblem(STORAGE_FULL) from None
                raise
    activity.count("submission_stored_server_sealed")
    if shown_codename is not None:
        # The codename once more, on the answer to this POST itself: it must
        # never go into a URL, so a tip with one gets no redirect (pages are
        # no-store; a reload asks before sending again).
        return received_page(request, codename=shown_codename)
    raise web.HTTPSeeOther(f"{RECEIVED_PATH}?lang={submission.language}")


@contextlib.asynccontextmanager
async def _sealing_slot(request: web.Request, config: Config) -> AsyncIterator[None]:
    """One of ``max_concurrent_submissions`` slots, for the memory and CPU of sealing.

    A form that has fully arrived waits its turn (sealing takes seconds); if
    no slot frees up within ``request_timeout_seconds``, 503.
    """
    slots = request.app[SUBMISSION_SLOTS]
    try:
        async with asyncio.timeout(config.request_timeout_seconds):
            await slots.acquire()
    except TimeoutError:
        activity.count("submission_refused_busy")
        raise SourceProblem(RELAY_BUSY) from None
    try:
        yield
    finally:
        slots.release()


async def _adopt_form_language(request: web.Request) -> None:
    """Before refusing unread, take the page language from the form's first field.

    The form sends ``lang`` first, so a few hundred bytes tell which language
    the refusal page must be in; anything unexpected keeps the current one.
    """
    if not _is_multipart_form(request):
        return
    with contextlib.suppress(*_MALFORMED_BODY_ERRORS, TimeoutError, SourceProblem):
        async with asyncio.timeout(LANGUAGE_PEEK_SECONDS):
            part = await (await request.multipart()).next()
            if isinstance(part, BodyPartReader) and _field_and_file_name(part)[0] == "lang":
                # Small reads: a large one would wait for more of the body than
                # the lang field needs to find its end.
                value = await part.read_chunk(LANGUAGE_PEEK_READ_BYTES)
                language = value.decode("ascii", "replace").strip()
                if i18n.is_supported(language):
                    request[LANGUAGE] = language


def _raw_body_limit(config: Config) -> int:
    return (
        config.max_submission_bytes
        + MULTIPART_OVERHEAD_BYTES
        + PART_OVERHEAD_BYTES * (config.max_attachments + 2)
    )


def _check_declared_size(request: web.Request, config: Config) -> None:
    """Refuse at once what announces itself as too big, or is not a form."""
    declared = request.content_length
    if declared is not None and declared > _raw_body_limit(config):
        raise SourceProblem(SUBMISSION_TOO_LARGE, limit=config.max_submission_bytes)
    if not _is_multipart_form(request):
        raise SourceProblem(MALFORMED_FORM)


def _is_multipart_form(request: web.Request) -> bool:
    """Whether the body says it is multipart/form-data (MultipartReader checks the rest).

    ``request.content_type`` would run the stdlib e-mail header parser, a tenth
    of the CPU a small tip costs; the media type is all this needs.
    """
    media_type = request.headers.get(hdrs.CONTENT_TYPE, "").split(";", 1)[0]
    return media_type.strip().lower() == "multipart/form-data"


def _check_free_disk(config: Config, needed: int) -> None:
    """507 unless the data folder (blobs and spools alike) keeps its reserve."""
    if _free_bytes(Path(config.data_dir)) - needed < config.disk_reserve_bytes:
        activity.count("submission_refused_disk_reserve")
        raise SourceProblem(STORAGE_FULL)


_free_space_cache: dict[Path, tuple[float, int]] = {}


def _free_bytes(folder: Path) -> int:
    now = time.monotonic()
    cached = _free_space_cache.get(folder)
    if cached is None or now - cached[0] > DISK_CHECK_MAX_AGE_SECONDS:
        cached = (now, shutil.disk_usage(folder).free)
        _free_space_cache[folder] = cached
    return cached[1]


async def _receive(
    request: web.Request, config: Config, spools: contextlib.ExitStack
) -> ReceivedSubmission:
    """Read the form's parts in order, within every limit."""
    budget = _Budget(request, config)
    spools.callback(budget.release_memory)  # after sealing, which needs the bytes
    submission = ReceivedSubmission(language=request[LANGUAGE])
    seen_message = seen_language = seen_codename = False
    attachment_parts = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise SourceProblem(MALFORMED_FORM)  # nested multipart: not from a form
        field_name, file_name = _field_and_file_name(part)
        if field_name == "lang" and not seen_language:
            seen_language = True
            value = await _read_small_part(part, budget, LANGUAGE_FIELD_MAX_BYTES)
            language = value.decode("ascii", "replace").strip()
            if i18n.is_supported(language):
                submission.language = request[LANGUAGE] = language
        elif field_name == CODENAME_FIELD and not seen_codename:
            seen_codename = True
            submission.codename = await _read_codename(part, budget, request)
        elif field_name == "message" and not seen_message:
            seen_message = True
            submission.message = await _read_message(part, budget, config)
        elif field_name == "attachment":
            attachment_parts += 1
            if attachment_parts > config.max_attachments:
                raise SourceProblem(TOO_MANY_FILES, count=config.max_attachments)
            attachment = await _receive_attachment(
                part, file_name, budget, config, spools, request.app[STORE].tmp_dir
            )
            if attachment is not None:
                submission.attachments.append(attachment)
        else:
            raise SourceProblem(MALFORMED_FORM)  # unknown or repeated field
    return submission


# What every browser sends (quotes and line breaks in names are %-escaped):
# parsed directly, as aiohttp's general parser costs more than sealing a small tip.
_BROWSER_DISPOSITION = re.compile(r'form-data; name="([^"\\]*)"(?:; filename="([^"\\]*)")?')


def _field_and_file_name(part: BodyPartReader) -> tuple[str | None, str]:
    """The part's field name and file name from its Content-Disposition.

    A malformed header is refused rather than warned about: aiohttp's warning
    would print the header, and with it the file name, to the log.
    """
    header = part.headers.get(hdrs.CONTENT_DISPOSITION, "")
    if match := _BROWSER_DISPOSITION.fullmatch(header):
        return match.group(1), match.group(2) or ""
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadContentDispositionHeader)
        warnings.simplefilter("error", BadContentDispositionParam)
        try:
            _, params = parse_content_disposition(header)
        except (BadContentDispositionHeader, BadContentDispositionParam):
            raise SourceProblem(MALFORMED_FORM) from None
    field_name = content_disposition_filename(params, "name")
    return field_name, content_disposition_filename(params, "filename") or ""


class _Budget:
    """The submission's byte limits, checked as data arrives, and its share of
    the relay's ``ReceiveMemory`` (every byte read is held until spooled or the end)."""

    def __init__(self, request: web.Request, config: Config) -> None:
        self._content = request.content
        self._raw_limit = _raw_body_limit(config)
        self._payload_limit = config.max_submission_bytes
        self._memory = request.app[RECEIVE_MEMORY]
        self._held_bytes = 0
        self.payload_bytes = 0
        self.in_memory_bytes = 0
        """Attachment bytes kept in memory so far (see IN_MEMORY_ATTACHMENT_BYTES)."""

    def spend(self, count: int) -> None:
        """Count ``count`` payload bytes just read; 413 when the payload or body is
        too big, 503 when the relay holds too much of all forms in memory."""
        self.payload_bytes += count
        if self.payload_bytes > self._payload_limit or self._content.total_bytes > self._raw_limit:
            raise SourceProblem(SUBMISSION_TOO_LARGE, limit=self._payload_limit)
        try:
            self._memory.claim(count)
        except ReceiveMemoryFull:
            activity.count("submission_refused_memory")
            raise SourceProblem(RELAY_BUSY) from None
        self._held_bytes += count

    def spooled(self, count: int) -> None:
        """``count`` bytes went to a spool: no longer held in memory."""
        self._memory.release(count)
        self._held_bytes -= count

    def release_memory(self) -> None:
        """The request is over: give back everything it still holds."""
        self._memory.release(self._held_bytes)
        self._held_bytes = 0


async def _read_small_part(part: BodyPartReader, budget: _Budget, limit: int) -> bytes:
    data = bytearray()
    while not part.at_eof():
        chunk = await part.read_chunk(READ_CHUNK_BYTES)
        budget.spend(len(chunk))
        data += chunk
        if len(data) > limit:
            raise SourceProblem(MALFORMED_FORM)
    return bytes(data)


async def _read_codename(
    part: BodyPartReader, budget: _Budget, request: web.Request
) -> Codename | None:
    """The codename field (no-JS form, follow-up form): None when left empty (a one-off tip).

    A relay without a conversation salt offers no codename; one sent anyway is
    refused rather than dropped, so that nobody believes they can read replies.
    """
    value = await _read_small_part(part, budget, CODENAME_FIELD_MAX_BYTES)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceProblem(MALFORMED_FORM) from None
    codename = read_typed_codename(text, nothing_stored=True)
    if codename is not None:
        relay_salt(request.app)
    return codename


async def _read_message(part: BodyPartReader, budget: _Budget, config: Config) -> str:
    """The message text: UTF-8, at most ``max_message_bytes``, newlines as ``\\n``."""
    data = bytearray()
    while not part.at_eof():
        chunk = await part.read_chunk(READ_CHUNK_BYTES)
        budget.spend(len(chunk))
        data += chunk
        if len(data) > config.max_message_bytes:
            raise SourceProblem(MESSAGE_TOO_LONG, limit=config.max_message_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceProblem(INVALID_TEXT) from None
    # Browsers send a textarea's line breaks as CRLF; the browser path stores "\n".
    return text.replace("\r\n", "\n")


async def _receive_attachment(
    part: BodyPartReader,
    name: str,
    budget: _Budget,
    config: Config,
    spools: contextlib.ExitStack,
    spool_dir: Path,
) -> ReceivedAttachment | None:
    """Receive one attachment; None for the empty part of a file input left blank."""
    pending = bytearray()
    spool: EphemeralSpool | None = None
    unchecked = 0
    while not part.at_eof():
        chunk = await part.read_chunk(READ_CHUNK_BYTES)
        budget.spend(len(chunk))
        pending += chunk
        if spool is None and budget.in_memory_bytes + len(pending) > IN_MEMORY_ATTACHMENT_BYTES:
            # In the data folder, not /tmp: one file system, one disk reserve
            # (a small tmpfs /tmp would otherwise refuse every large tip).
            spool = spools.enter_context(EphemeralSpool(spool_dir))
        if spool is not None and len(pending) >= SPOOL_WRITE_BYTES:
            full, pending = pending, bytearray()
            await asyncio.to_thread(spool.write, full)
            budget.spooled(len(full))
            unchecked += len(full)
            if unchecked >= DISK_CHECK_INTERVAL_BYTES:
                _check_free_disk(config, needed=0)
                unchecked = 0
    if spool is None:
        if not name and not pending:
            return None
        budget.in_memory_bytes += len(pending)
        return ReceivedAttachment(name=name, body=InMemoryBody(bytes(pending)))
    if pending:
        await asyncio.to_thread(spool.write, pending)
        budget.spooled(len(pending))
    return ReceivedAttachment(name=name, body=spool)
