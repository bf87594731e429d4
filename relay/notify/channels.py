"""The channels' secrets file: where digests go, and to whose OpenPGP key.

A TOML file beside the relay's config (``notify_channels_file``), mode 0600::

    [[channel]]
    url = "mailtos://relay:PASSWORD@mail.example.org?to=olga@example.org"
    reviewer = "olga"       # the body is encrypted to olga's OpenPGP key (keys/olga.toml)

    [[channel]]
    url = "ntfy://ntfy.example.org/a-long-random-topic"
    plain = true            # counts only, unencrypted: an explicit choice

Each ``url`` is an Apprise URL (mailto://, mailtos://, matrix://, signal://,
ntfy://, json://, ...). A channel whose ``reviewer`` has an OpenPGP key in
``keys/`` gets the digest encrypted to that key (ASCII armor); every other
channel must say ``plain = true``, or the relay refuses to start. The URLs
hold passwords and tokens: nothing here puts one in a log line or an error
message; channels are named by their number in the file and their kind (the
URL's scheme).
"""

from __future__ import annotations

import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from relay.errors import ConfigError
from relay.keyring import Keyring

MAX_CHANNELS = 50
MAX_FILE_BYTES = 64 * 1024
_FIELDS = frozenset({"url", "reviewer", "plain"})
_KIND = re.compile(r"([a-z][a-z0-9+.-]{0,31})://")


@dataclass(frozen=True)
class Channel:
    """One place a digest goes. Its ``url`` is a secret: it is left out of ``repr``."""

    number: int
    kind: str
    url: str = field(repr=False)
    reviewer: str | None
    encrypted: bool

    @property
    def label(self) -> str:
        """How the channel is named to people: ``channel 2 (ntfy)``; never the URL."""
        return f"channel {self.number} ({self.kind})"


def _refuse_open_mode(path: Path) -> None:
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"The notification channels file {path} does not exist "
            "(notify_channels_file; empty for no notifications)."
        ) from None
    except OSError as exc:
        raise ConfigError(f"The notification channels file {path}: {exc.strerror}.") from None
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"The notification channels file {path} is not a file.")
    if status.st_mode & 0o077:
        raise ConfigError(
            f"The notification channels file {path} may be read by others "
            f"(mode {stat.S_IMODE(status.st_mode):04o}); it holds passwords and tokens: "
            f"chmod 600 {path}"
        )
    if status.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"The notification channels file {path} is larger than 64 KiB.")


def _read_table(path: Path) -> dict[str, object]:
    _refuse_open_mode(path)
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # tomllib names the line and column, never the text on it.
        raise ConfigError(f"The notification channels file {path} is not TOML: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The notification channels file {path} is unreadable: {exc}.") from None


def _check_url(where: str, url: str) -> str:
    """The channel's kind (its scheme), once Apprise accepts the URL."""
    import apprise  # only when notifications are on

    from relay.notify.sending import apprise_asset, quiet_apprise

    match = _KIND.match(url)
    if match is None:
        raise ConfigError(
            f"{where}: url must be an Apprise URL such as mailtos://... or ntfy://..."
        )
    quiet_apprise()
    plugin = apprise.Apprise.instantiate(url, asset=apprise_asset(), suppress_exceptions=True)
    if plugin is None:
        raise ConfigError(
            f"{where}: Apprise does not accept this {match.group(1)}:// URL "
            "(see the Apprise documentation of that service; `apprise -vv URL` tells why)."
        )
    return match.group(1)


def load_channels(path: Path, keyring: Keyring) -> tuple[Channel, ...]:
    """Every channel in ``path``, checked against ``keyring``; ConfigError names the bad one."""
    table = _read_table(path)
    unknown = sorted(set(table) - {"channel"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; only [[channel]] tables.")
    entries = table.get("channel", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path} lists no channel: add a [[channel]] with a url.")
    if len(entries) > MAX_CHANNELS:
        raise ConfigError(f"{path} lists more than {MAX_CHANNELS} channels.")
    reviewers = {reviewer.name: reviewer for reviewer in keyring.reviewers}
    channels: list[Channel] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}, channel {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: each channel is a [[channel]] table.")
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: url, reviewer, plain."
            )
        url, reviewer_name = entry.get("url"), entry.get("reviewer")
        plain = entry.get("plain", False)
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{where}: url is missing (an Apprise URL, in quotes).")
        if not isinstance(plain, bool):
            raise ConfigError(f"{where}: plain is true or false.")
        if reviewer_name is not None and (
            not isinstance(reviewer_name, str) or reviewer_name not in reviewers
        ):
            raise ConfigError(
                f"{where}: reviewer must name a reviewer in keys/ ({', '.join(sorted(reviewers))})."
            )
        kind = _check_url(where, url.strip())
        reviewer = reviewers.get(reviewer_name) if reviewer_name is not None else None
        encrypted = reviewer is not None and reviewer.openpgp_key is not None
        if not encrypted and not plain:
            who = (
                f"reviewer {reviewer_name} has no OpenPGP key"
                if reviewer_name is not None
                else "no reviewer with an OpenPGP key is named"
            )
            raise ConfigError(
                f"{where} ({kind}): {who}, so its digest would go unencrypted. Name a "
                'reviewer with an OpenPGP key (reviewer = "..."), or say plain = true to '
                "send the counts in the clear."
            )
        channels.append(Channel(number, kind, url.strip(), reviewer_name, encrypted))
    return tuple(channels)


__all__ = ["MAX_CHANNELS", "Channel", "load_channels"]
