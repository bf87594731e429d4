"""``tiprelay push``: upload the replies of a bundle's outbox to the relay (online machine)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from relay.cli.pull import load_signing_key
from relay.errors import TiprelayError
from relay.push import CONFLICT_MESSAGE, push_outbox


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
    "--proxy",
    metavar="socks5h://HOST:PORT",
    help="Connect through a SOCKS5 proxy that resolves names; Tor: socks5h://127.0.0.1:9050.",
)
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def push(server_url: str, key_path: Path, proxy: str | None, bundle_dir: Path) -> None:
    """Upload the replies in BUNDLE_DIR/outbox/ (written by `tiprelay reply`).

    Each reply replaces its slot only if the slot still holds what it held at
    your last pull; delivered replies move to sent/. Safe to run again after a
    failure. If another reviewer replied first, push stops: pull, then reply again.

    \b
    Example:
      tiprelay push --server http://abc...xyz.onion --proxy socks5h://127.0.0.1:9050 \\
                    --key ~/.tiprelay/api.key /media/usb/bundle
    """
    if ".onion" in server_url and not proxy:
        raise click.ClickException(
            "An .onion address is reachable only through Tor: add --proxy socks5h://127.0.0.1:9050"
        )
    key = load_signing_key(key_path)
    try:
        report = asyncio.run(push_outbox(server_url, key, bundle_dir, proxy=proxy))
    except TiprelayError as exc:
        raise click.ClickException(str(exc)) from None
    delivered = len(report.delivered) + len(report.already_there)
    click.echo(f"{delivered} reply(ies) delivered (moved to {bundle_dir / 'sent'}).")
    if report.conflicted:
        click.echo(f"tiprelay: error: {CONFLICT_MESSAGE}", err=True)
        click.echo(
            f"The refused reply is in {bundle_dir / 'conflicted'}; "
            f"{report.left} other reply(ies) wait in the outbox.",
            err=True,
        )
        sys.exit(1)
