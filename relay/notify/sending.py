"""Sending one digest to every channel, without ever holding up the relay.

Each channel is sent to in a worker thread of this module's own pool (never
the event loop's default executor, which the store uses), with a timeout:
a channel that hangs costs one worker, never a source's request. A channel
that fails is tried again ``retries`` times, after ``retry_seconds`` and then
twice as long each time, and never once the next digest is due. Apprise's
own socket timeouts are set a second past that timeout, so a stuck worker is
freed soon after, while the attempt is always reported as what it was: a
timeout, never a refusal because Apprise's clock happened to run out first.

What is logged: per digest, how many channels, sent and failed; per failed
attempt, the channel's kind (its URL's scheme), the attempt's number and a
reason code. Never a URL, a host, a token, or what a channel answered:
Apprise's logger is cut off from the relay's log (``quiet_apprise``), and
its messages are kept only for ``tiprelay notify-test`` to show the
operator, with the channel's URL parts blanked out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from relay.log import get_logger
from relay.notify.channels import Channel
from relay.notify.digest import TITLE, Digest, render

_log = get_logger("relay.notify")
APPRISE_LOGGER = "apprise"
WORKERS_PER_CHANNEL = 2
MAX_SAID = 5
"""At most this many of Apprise's messages are kept per attempt (for notify-test)."""

Encrypt = Callable[[str, str], str]
"""(reviewer name, text) -> the text as an armored OpenPGP message to their key."""


def quiet_apprise() -> None:
    """Keep Apprise's log records out of the relay's log: they name hosts and targets."""
    apprise_logger = logging.getLogger(APPRISE_LOGGER)
    apprise_logger.propagate = False
    apprise_logger.setLevel(logging.WARNING)
    if not any(isinstance(h, logging.NullHandler) for h in apprise_logger.handlers):
        apprise_logger.addHandler(logging.NullHandler())


def apprise_asset() -> Any:
    """Apprise's settings: no plugin folders scanned, state kept in memory only."""
    import apprise

    return apprise.AppriseAsset(plugin_paths=[], storage_mode="memory", secure_logging=True)


@dataclass(frozen=True)
class DeliverySettings:
    """How long one attempt may take, and how often a failed channel is tried again."""

    timeout_seconds: float
    retries: int
    retry_seconds: float


@dataclass
class Answer:
    """What one channel did with one digest."""

    channel: Channel
    sent: bool = False
    attempts: int = 0
    reason: str = "not_tried"
    """``sent``, ``timeout``, ``refused`` (the channel said no), ``error`` (Apprise
    raised) or ``encryption_failed``."""
    said: list[str] = field(default_factory=list)
    """Apprise's warnings and errors for the last attempt, URL parts blanked (notify-test)."""


class _ThreadCapture(logging.Handler):
    """Apprise's records made by one thread (one attempt), their text blanked of ``secrets``."""

    def __init__(self, thread: int, secrets: Sequence[str]) -> None:
        super().__init__(logging.WARNING)
        self.thread = thread
        self.secrets = secrets
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or len(self.messages) >= MAX_SAID:
            return
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in a library must not break a send
            return
        self.messages.append(blank_out(text, self.secrets)[:300])


def url_parts(url: str) -> list[str]:
    """The pieces of ``url`` that must not be shown (user, password, host, path, query),
    longest first, raw and percent-decoded."""
    pieces = set()
    for piece in re.split(r"[:/@?&=#,]+", url.split("://", 1)[-1]):
        for form in (piece, urllib.parse.unquote(piece)):
            if len(form) >= 3:
                pieces.add(form)
    return sorted(pieces, key=len, reverse=True)


def blank_out(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


WORKER_GRACE_SECONDS = 1.0
"""How long past the channel timeout Apprise's sockets may wait before a worker is freed."""


def _send_in_thread(channel: Channel, body: str, timeout: float) -> tuple[str, list[str]]:
    """One attempt through Apprise, in a worker thread: (reason, what Apprise said)."""
    import apprise

    capture = _ThreadCapture(threading.get_ident(), url_parts(channel.url))
    apprise_logger = logging.getLogger(APPRISE_LOGGER)
    apprise_logger.addHandler(capture)
    try:
        plugin = apprise.Apprise.instantiate(
            channel.url, asset=apprise_asset(), suppress_exceptions=True
        )
        if plugin is None:
            return "refused", capture.messages
        # Apprise's own socket timeouts, so that a worker never hangs for long;
        # a second past ours, so that ours always ends a hanging attempt first.
        socket_timeout = timeout + WORKER_GRACE_SECONDS
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, socket_timeout)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, socket_timeout)
        ok = plugin.notify(body=body, title=TITLE, body_format=apprise.NotifyFormat.TEXT)
        return ("sent" if ok else "refused"), capture.messages
    except Exception:  # Apprise raised: a bug or an unusual failure; no text is kept
        return "error", capture.messages
    finally:
        apprise_logger.removeHandler(capture)


class Sender:
    """Sends digests to a fixed list of channels through a small pool of its own threads."""

    def __init__(
        self,
        channels: Sequence[Channel],
        encrypt: Encrypt,
        settings: DeliverySettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        quiet_apprise()
        self.channels = tuple(channels)
        self.settings = settings
        self._encrypt = encrypt
        self._clock = clock
        self._sleep = sleep
        # Two threads per channel: one may still be stuck in a send that timed
        # out (until Apprise's own socket timeout frees it) while its retry runs.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, WORKERS_PER_CHANNEL * len(self.channels)),
            thread_name_prefix="notify",
        )

    def close(self) -> None:
        """Stop the pool; a worker stuck in a send is left to finish on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _body_for(self, channel: Channel, text: str) -> str:
        if not channel.encrypted:
            return text
        assert channel.reviewer is not None  # an encrypted channel names its reviewer
        return self._encrypt(channel.reviewer, text)

    def _attempt_in_pool(
        self, channel: Channel, text: str, timeout: float
    ) -> tuple[str, list[str]]:
        try:
            body = self._body_for(channel, text)
        except Exception:  # gpg failed, or the reviewer left keys/: never send plain
            return "encryption_failed", []
        return _send_in_thread(channel, body, timeout)

    async def attempt(self, channel: Channel, text: str) -> tuple[str, list[str]]:
        """One attempt at ``channel``, given at most the timeout: (reason, what Apprise said)."""
        timeout = self.settings.timeout_seconds
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._attempt_in_pool, channel, text, timeout)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return "timeout", []

    async def _deliver_to(self, channel: Channel, text: str, deadline: float | None) -> Answer:
        answer = Answer(channel)
        delay = self.settings.retry_seconds
        for attempt in range(1, self.settings.retries + 2):
            answer.attempts = attempt
            answer.reason, answer.said = await self.attempt(channel, text)
            if answer.reason == "sent":
                answer.sent = True
                return answer
            _log.warning(
                "notify.channel_failed",
                channel_kind=channel.kind,
                attempt=attempt,
                reason=answer.reason,
            )
            if attempt > self.settings.retries:
                break
            if deadline is not None and self._clock() + delay >= deadline:
                break  # the next digest is due: it carries the counts instead
            await self._sleep(delay)
            delay *= 2
        return answer

    async def deliver(
        self, digest: Digest, *, deadline: float | None = None, retry: bool = True
    ) -> list[Answer]:
        """Send ``digest`` to every channel at once; retried (if ``retry``) until ``deadline``.

        Logs one ``notify.digest_sent`` line with the counts of channels, sent and failed.
        """
        text = render(digest)
        if retry:
            answers = await asyncio.gather(
                *(self._deliver_to(channel, text, deadline) for channel in self.channels)
            )
        else:
            answers = []
            for channel in self.channels:
                answer = Answer(channel, attempts=1)
                answer.reason, answer.said = await self.attempt(channel, text)
                answer.sent = answer.reason == "sent"
                answers.append(answer)
        sent = sum(1 for answer in answers if answer.sent)
        _log.info(
            "notify.digest_sent",
            channels=len(answers),
            sent=sent,
            failed=len(answers) - sent,
        )
        return list(answers)


__all__ = [
    "Answer",
    "DeliverySettings",
    "Encrypt",
    "Sender",
    "apprise_asset",
    "blank_out",
    "quiet_apprise",
    "url_parts",
]
