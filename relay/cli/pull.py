"""``tiprelay pull``: fetch new ciphertexts from a relay into a bundle folder (online machine)."""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from relay.crypto.errors import KeyFormatError
from relay.crypto.signing import SigningKey
from relay.errors import TiprelayError
from relay.manifest import human_size
from relay.pull import PullReport, pull_bundle


class _TerminalProgress:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._left = 0

    def begin(self, total_bytes: int) -> None:
        if total_bytes and sys.stderr.isatty():
            self._bar = click.progressbar(
                length=total_bytes, label="Pulling", file=sys.stderr, show_pos=False
            )
            self._bar.__enter__()
            self._left = total_bytes

    def advance(self, received_bytes: int) -> None:
        # A retried download counts its resumed part again: never past 100 %.
        step = min(received_bytes, self._left)
        if self._bar is not None and step > 0:
            self._left -= step
            self._bar.update(step)

    def __enter__(self) -> _TerminalProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, traceback)


def load_signing_key(path: Path) -> SigningKey:
    """Read an API signing key file, warning when others may read it."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(
            f"Warning: {path} can be read by other users; run: chmod 600 {path}", err=True
        )
    try:
        return SigningKey.from_key_file_text(path.read_text(encoding="utf-8", errors="replace"))
    except KeyFormatError as exc:
        raise click.ClickException(
            f"{path}: {exc} (make one with: tiprelay reviewer-key -o FILE)"
        ) from None


def _summary(report: PullReport, bundle_dir: Path) -> str:
    parts = [
        f"{len(report.downloaded)} new submission(s) pulled into {bundle_dir}"
        f" ({human_size(report.received_bytes)} received)",
        f"{len(report.already_present)} already there",
    ]
    if report.deleted:
        parts.append(f"{len(report.deleted)} deleted from the relay")
    parts.append(
        f"{report.replies_downloaded} new reply(ies) of {report.replies_listed} on the relay"
    )
    return "; ".join(parts) + "."


@click.command()
@click.option("--server", "server_url", required=True, metavar="URL", help="The relay's address.")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your API signing key (from `tiprelay reviewer-key`).",
)
@click.option(
    "-o",
    "--output",
    "bundle_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bundle folder (created if missing; pulling again adds only what is new).",
)
@click.option(
    "--delete",
    is_flag=True,
    help="Then delete from the relay each submission verified on disk (and only those).",
)
@click.option(
    "--proxy",
    metavar="socks5h://HOST:PORT",
    help="Connect through a SOCKS5 proxy that resolves names; Tor: socks5h://127.0.0.1:9050.",
)
def pull(
    server_url: str, key_path: Path, bundle_dir: Path, delete: bool, proxy: str | None
) -> None:
    """Download every submission not yet in BUNDLE_DIR, verify each SHA-256, update manifest.json.

    An interrupted pull resumes where it stopped when run again. Carry the
    bundle to the offline machine and read it there with `tiprelay decrypt`.

    \b
    Example:
      tiprelay pull --server http://abc...xyz.onion --proxy socks5h://127.0.0.1:9050 \\
                    --key ~/.tiprelay/api.key -o /media/usb/bundle
    """
    if ".onion" in server_url and not proxy:
        raise click.ClickException(
            "An .onion address is reachable only through Tor: add --proxy socks5h://127.0.0.1:9050"
        )
    key = load_signing_key(key_path)
    try:
        with _TerminalProgress() as progress:
            pulling = pull_bundle(
                server_url,
                key,
                bundle_dir,
                delete=delete,
                proxy=proxy,
                progress=progress,
                on_retry=lambda message: click.echo(message, err=True),
            )
            report = asyncio.run(pulling)
    except TiprelayError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_summary(report, bundle_dir))
    if report.outbox_pending:
        click.echo(
            f"Note: the outbox holds {report.outbox_pending} reply(ies) not pushed yet: "
            f"tiprelay push --server URL --key FILE {bundle_dir}"
        )
    for tag, reason in sorted(report.replies_failed.items()):
        click.echo(f"Warning: reply slot {tag}... not pulled: {reason}.", err=True)
    for submission_id, reason in sorted(report.failed.items()):
        click.echo(f"Warning: {submission_id} not pulled: {reason}.", err=True)
    for submission_id, reason in sorted(report.kept_on_relay.items()):
        click.echo(f"Warning: {submission_id} not deleted: {reason}.", err=True)
    if report.failed or report.kept_on_relay or report.replies_failed:
        sys.exit(1)
