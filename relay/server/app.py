"""The application factory: ``create_app(config)`` builds the whole relay.

Resources live in ``cleanup_ctx`` generators (set up, ``yield``, tear down):
the store, the retention task, the file-times blur, the reviewer-key watch, the
team's digest (when channels are configured) and, when serving for real, the
SIGHUP handler that reloads ``keys/``. The reviewer API and the tus uploads are
added by their own modules when they are present.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import logging
import signal
import time
import warnings
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path

from aiohttp import web
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from relay.activity import activity
from relay.config import Config
from relay.conversation_salt import load_conversation_salt
from relay.errors import KeyringError
from relay.keyring import Keyring, KeyringHolder
from relay.log import get_logger
from relay.server.appkeys import (
    CONFIG,
    CONVERSATION_SALT,
    DERIVATION_GATE,
    DIGEST_SENDER,
    KEYRING,
    RECEIVE_MEMORY,
    RING_READ_SLOTS,
    STORE,
    SUBMISSION_SLOTS,
)
from relay.server.codenames import RING_READS_AT_ONCE
from relay.server.derivation_gate import REPORT_MINUTES, DerivationGate
from relay.server.middlewares import add_security_headers, choose_language, error_pages
from relay.server.page_padding import pad_reply_pages
from relay.server.receive_memory import ReceiveMemory
from relay.server.routes import setup_source_routes
from relay.store import SubmissionStore

RETENTION_INTERVAL_SECONDS = 3600.0
"""How often submissions older than ``retention_days`` are looked for."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long running requests may finish after SIGTERM before they are cut."""
CLIENT_MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_LINE_BYTES = 8190
MAX_HEADERS = 64
LINGERING_SECONDS = 10.0
"""For handlers that read a whole body (the reviewer API); uploads stream instead."""

# Modules owned by other parts of the relay: (module, setup function).
_OPTIONAL_FEATURES = (
    ("relay.server.reviewer_api", "setup_reviewer_api"),
    ("relay.server.uploads", "setup_uploads"),
    ("relay.server.reviewer_replies", "setup_reviewer_replies"),
    ("relay.server.source_replies", "setup_source_replies"),
    ("relay.server.reply_page", "setup_reply_pages"),
)

_log = get_logger("relay.server.app")
# In the data folder: the gpg home that wraps file keys to OpenPGP reviewers,
# made afresh from keys/ at every start (public keys only).
OPENPGP_KEYRING_FOLDER = "openpgp-keyring"


def create_app(config: Config, *, reload_keys_on_sighup: bool = False) -> web.Application:
    """The relay as an aiohttp application; raises KeyringError without valid keys."""
    keep_warnings_out_of_logs()
    app = web.Application(
        middlewares=[choose_language, pad_reply_pages, error_pages],
        client_max_size=CLIENT_MAX_BODY_BYTES,
    )
    app[CONFIG] = config
    holder = KeyringHolder(config.keys_dir, config.data_dir / OPENPGP_KEYRING_FOLDER)
    holder.current  # noqa: B018 (loads the keys now, so a bad keys/ fails at start)
    app[KEYRING] = holder
    app[CONVERSATION_SALT] = load_conversation_salt(config.keys_dir)
    if app[CONVERSATION_SALT] is None:
        _log.warning("conversations.disabled_no_salt")
    app.on_response_prepare.append(add_security_headers)
    app[SUBMISSION_SLOTS] = asyncio.Semaphore(config.max_concurrent_submissions)
    app[DERIVATION_GATE] = DerivationGate(
        config.max_concurrent_derivations,
        config.max_waiting_derivations,
        config.derivation_wait_ms / 1000,
    )
    app[RING_READ_SLOTS] = asyncio.Semaphore(RING_READS_AT_ONCE)
    app[RECEIVE_MEMORY] = ReceiveMemory(config.max_receiving_memory_bytes)
    app.on_cleanup.append(_remove_gpg_homes)
    app.cleanup_ctx.append(open_store)
    app.cleanup_ctx.append(purge_expired_submissions)
    app.cleanup_ctx.append(blur_file_times_periodically)
    app.cleanup_ctx.append(report_activity_daily)
    if config.notify_channels_file is not None:
        setup_digests(app, config.notify_channels_file)
    app[_KEYS_RELOADED] = asyncio.Event()
    app.cleanup_ctx.append(watch_reviewer_keys)
    app.cleanup_ctx.append(expire_derived_keys)
    if reload_keys_on_sighup:
        app.cleanup_ctx.append(reload_keyring_on_sighup)
    setup_source_routes(app)
    for module_name, setup_name in _OPTIONAL_FEATURES:
        # Skip a feature only when its module does not exist yet; an error
        # inside an existing module must stop the start, not hide the feature.
        if importlib.util.find_spec(module_name) is not None:
            getattr(importlib.import_module(module_name), setup_name)(app)
    return app


async def _remove_gpg_homes(app: web.Application) -> None:
    app[KEYRING].close()


def keep_warnings_out_of_logs() -> None:
    """Warnings go through logging (whose allow-list drops their text), and aiohttp's
    warnings about malformed multipart headers, which quote the header and so a
    file name, are not raised at all: ``submit`` refuses such parts itself."""
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=BadContentDispositionHeader)
    warnings.filterwarnings("ignore", category=BadContentDispositionParam)


async def open_store(app: web.Application) -> AsyncIterator[None]:
    """The submission store: migrations and crash recovery at start, closed at the end."""
    config = app[CONFIG]
    store = SubmissionStore(
        config.data_dir,
        busy_timeout_ms=config.sqlite_busy_timeout_ms,
        upload_expiry_hours=config.upload_expiry_hours,
    )
    await asyncio.to_thread(store.open)
    # The digest's one number is kept only while digests go out.
    await asyncio.to_thread(store.count_arrivals, config.notify_channels_file is not None)
    # The data folder is ours now (its lock is held): clear what a crashed run
    # left of its gpg homes, never a home another relay is using.
    await asyncio.to_thread(app[KEYRING].remove_stale_gpg_homes)
    app[STORE] = store
    try:
        yield
    finally:
        await asyncio.to_thread(store.close)


@contextlib.asynccontextmanager
async def _in_background(loop: Coroutine[None, None, None], name: str) -> AsyncIterator[None]:
    """Run ``loop`` as a task while the app runs; cancel it at shutdown."""
    task = asyncio.create_task(loop, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def purge_expired_submissions(app: web.Application) -> AsyncIterator[None]:
    """A background task deleting submissions older than ``retention_days`` (row and blob),
    and replies older than ``reply_retention_days``."""
    async with _in_background(_retention_loop(app), "retention"):
        yield


async def _retention_loop(app: web.Application) -> None:
    config, store = app[CONFIG], app[STORE]
    purges = (
        (store.purge_older_than, config.retention_days),
        (store.purge_replies_older_than, config.reply_retention_days),
    )
    while True:
        for purge, days in purges:
            try:
                await asyncio.to_thread(purge, days)
            except Exception as error:  # keep purging later; log the type only
                _log.error("retention.failed", error_type=type(error).__name__)
        await asyncio.sleep(RETENTION_INTERVAL_SECONDS)


async def blur_file_times_periodically(app: web.Application) -> AsyncIterator[None]:
    """Re-stamp the data folder's file times every ``file_times_blur_seconds``, and at stop.

    Each run leaves every change time in the data folder at the moment of the
    run (see relay.file_times), so none tells when a submission arrived.
    """
    async with _in_background(_file_times_loop(app), "file-times-blur"):
        yield
    await _blur_file_times(app)


async def _file_times_loop(app: web.Application) -> None:
    period = app[CONFIG].file_times_blur_seconds
    while True:
        await _blur_file_times(app)
        await asyncio.sleep(seconds_until_next_multiple(period, time.time()))


async def _blur_file_times(app: web.Application) -> None:
    try:
        await asyncio.to_thread(app[STORE].blur_file_times)
    except Exception as error:  # try again on the next round; log the type only
        _log.error("file_times.blur_failed", error_type=type(error).__name__)


def seconds_until_next_multiple(period: int, now: float) -> float:
    """Seconds from ``now`` to the next multiple of ``period`` since the epoch (clock-aligned),
    so that a run's time says nothing about when the relay started."""
    return period - now % period


ACTIVITY_REPORT_INTERVAL_SECONDS = 600


async def report_activity_daily(app: web.Application) -> AsyncIterator[None]:
    """A timer: daily activity totals, derivation pressure (every ten minutes, only
    when the no-JS reply pages refused or dropped work), the disk-reserve warning.

    Both are driven by the clock, never by a source's request, so that no log
    line's timestamp tells when someone submitted (see relay.activity).
    """
    async with _in_background(_activity_loop(app), "activity-report"):
        yield
    activity.report_all()
    app[DERIVATION_GATE].report_pressure(REPORT_MINUTES)


async def _activity_loop(app: web.Application) -> None:
    config = app[CONFIG]
    low_on_disk = False
    gate = app[DERIVATION_GATE]
    first = True
    while True:
        activity.report_finished_days()
        if not first:
            gate.report_pressure(ACTIVITY_REPORT_INTERVAL_SECONDS // 60)
        first = False
        try:
            free = await asyncio.to_thread(app[STORE].free_bytes)
        except OSError as error:  # try again on the next round; log the type only
            _log.error("disk.check_failed", error_type=type(error).__name__)
        else:
            if (free < config.disk_reserve_bytes) != low_on_disk:
                low_on_disk = not low_on_disk
                if low_on_disk:
                    _log.warning("disk.below_reserve")
                else:
                    _log.info("disk.above_reserve")
        await asyncio.sleep(ACTIVITY_REPORT_INTERVAL_SECONDS)


def setup_digests(app: web.Application, channels_file: Path) -> None:
    """Read the channels now (a bad file stops the start), and send digests in the background."""
    # Imported here: a relay without notifications never imports Apprise.
    from relay.notify.channels import load_channels
    from relay.notify.sending import DeliverySettings, Sender

    config = app[CONFIG]
    channels = load_channels(channels_file, app[KEYRING].current)
    settings = DeliverySettings(
        timeout_seconds=config.notify_channel_timeout_seconds,
        retries=config.notify_retries,
        retry_seconds=config.notify_retry_seconds,
    )
    app[DIGEST_SENDER] = Sender(channels, app[KEYRING].encrypt_text_to, settings)
    app.cleanup_ctx.append(send_digests)
    _log.info("notify.enabled", channels=len(channels))


async def take_digest_counts(app: web.Application) -> tuple[int, int]:
    """(submissions waiting, arrived since the last digest), resetting the latter."""
    return await asyncio.to_thread(app[STORE].take_digest_counts)


async def send_digests(app: web.Application) -> AsyncIterator[None]:
    """The digest at each of ``notify_times`` (relay.notify.loop), whatever arrived."""
    from relay.notify.loop import run_digests

    sender = app[DIGEST_SENDER]
    counts = functools.partial(take_digest_counts, app)
    try:
        async with _in_background(run_digests(app[CONFIG].notify_times, counts, sender), "digests"):
            yield
    finally:
        sender.close()


KEY_CHECK_INTERVAL_SECONDS = 86400
"""The reviewer keys' expiry is checked at start, at every reload, at the moment a
key expires, and at every UTC midnight."""
_KEYS_RELOADED: web.AppKey[asyncio.Event] = web.AppKey("keys_reloaded", asyncio.Event)


async def watch_reviewer_keys(app: web.Application) -> AsyncIterator[None]:
    """A timer: the operator's warnings about reviewer keys that expire (see
    report_reviewer_keys). Driven by the clock and by reloads, never by a tip."""
    async with _in_background(_key_watch_loop(app), "reviewer-key-watch"):
        yield


async def _key_watch_loop(app: web.Application) -> None:
    holder, reloaded = app[KEYRING], app[_KEYS_RELOADED]
    while True:
        now = time.time()
        keyring = holder.current
        report_reviewer_keys(keyring, now)
        wait = seconds_until_next_multiple(KEY_CHECK_INTERVAL_SECONDS, now)
        upcoming = [r.expires - now for r in keyring.reviewers
                    if r.expires is not None and r.expires > now]
        if upcoming:
            # Tell the operator when it happens (just after: timers may fire early).
            wait = min(wait, min(upcoming) + 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reloaded.wait(), wait)
        reloaded.clear()


def report_reviewer_keys(keyring: Keyring, now: float) -> None:
    """One line per reviewer whose OpenPGP key expires within 14 days (a warning) or
    has expired (an error: tips are sealed to the others, not to them), and a
    critical line when no reviewer is left to seal to. Names, fingerprints and
    days only: nothing about tips."""
    for notice in keyring.expiry_notices(now):
        if notice.expired:
            _log.error("keyring.reviewer_key_expired", reviewer=notice.reviewer,
                       fingerprint=notice.fingerprint, day=notice.day)
        else:
            _log.warning("keyring.reviewer_key_expires_soon", reviewer=notice.reviewer,
                         fingerprint=notice.fingerprint, day=notice.day,
                         days_left=notice.days_left)
    if keyring.usable_at(now) is None:
        _log.critical("keyring.no_usable_reviewer_key", reviewers=len(keyring.reviewers))


CACHE_SWEEP_SECONDS = 60


async def expire_derived_keys(app: web.Application) -> AsyncIterator[None]:
    """Every minute, drop the reply pages' cached keys older than five minutes
    (relay.server.derivation_gate); at shutdown, all of them."""
    async with _in_background(_expiry_loop(app), "derived-keys-expiry"):
        yield
    app[DERIVATION_GATE].forget_all()


async def _expiry_loop(app: web.Application) -> None:
    while True:
        await asyncio.sleep(CACHE_SWEEP_SECONDS)
        app[DERIVATION_GATE].forget_expired()


async def reload_keyring_on_sighup(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP reloads ``keys/``; a broken keys/ keeps the old keys and is logged."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, _reload_keyring, app)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


def _reload_keyring(app: web.Application) -> None:
    try:
        keyring = app[KEYRING].reload()
    except KeyringError as error:
        _log.error("keyring.reload_failed", error_type=type(error).__name__)
        return
    _log.info("keyring.reloaded", count=len(keyring.reviewers))
    app[_KEYS_RELOADED].set()  # the key watch reports on the new keys


def run_relay(app: web.Application, config: Config) -> None:
    """Serve ``app`` on the configured host and port until SIGINT or SIGTERM.

    aiohttp's access log is off: it would record addresses and user agents.
    """
    _log.info("relay.starting", port=config.port)
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        # aiohttp starts this timer when a connection opens and closes the
        # connection if no complete request (headers) arrived in time, or
        # once it has sat idle this long between requests: a connection that
        # sends nothing, or trickles its headers, is dropped.
        keepalive_timeout=config.connection_idle_timeout_seconds,
        # Request limits below the application: a request line or header line of
        # at most 8 KiB, at most 64 headers, no compressed request bodies (no
        # browser sends one; a small gzip body can expand enormously), and a
        # refused upload's remainder is drained for at most 10 s.
        max_line_size=MAX_HEADER_LINE_BYTES,
        max_field_size=MAX_HEADER_LINE_BYTES,
        max_headers=MAX_HEADERS,
        auto_decompress=False,
        lingering_time=LINGERING_SECONDS,
    )
