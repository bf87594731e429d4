"""``tiprelay notify-test``: send one test digest to every channel and say what each answered."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import click

from relay.cli.common import fail, user_errors
from relay.config import load_config
from relay.errors import ConfigError

_ANSWERS = {
    "sent": "sent (the channel accepted it)",
    "timeout": "failed: no answer within notify_channel_timeout_seconds",
    "refused": "failed: the channel refused it or could not be reached",
    "error": "failed: Apprise stopped with an error",
    "encryption_failed": "failed: gpg could not encrypt to the reviewer's OpenPGP key",
}


@click.command("notify-test")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The relay's TOML config file (the one `tiprelay serve` uses).",
)
def notify_test(config_path: Path | None) -> None:
    """Send a test digest (counts of zero, marked as a test) to every channel.

    Reads the same config, keys/ and channels file as `tiprelay serve`, tries
    each channel once, and prints what it answered. Exits with status 1 if any
    channel failed. The relay may be running meanwhile: this touches neither
    its data folder nor its log.

    \b
    Example:
      tiprelay notify-test --config /etc/tiprelay/relay.toml
    """
    # Imported here so that `tiprelay --help` stays fast and light.
    from relay.keyring import KeyringHolder
    from relay.notify.channels import load_channels
    from relay.notify.digest import Digest
    from relay.notify.sending import DeliverySettings, Sender

    with user_errors():
        config = load_config(os.environ, config_path)
        if config.notify_channels_file is None:
            raise ConfigError(
                "notify_channels_file is not set in the config: there is no channel to test."
            )
        scratch = Path(tempfile.mkdtemp(prefix="tiprelay-notify-"))
        try:
            holder = KeyringHolder(config.keys_dir, scratch / "openpgp-keyring")
            try:
                channels = load_channels(config.notify_channels_file, holder.current)
                settings = DeliverySettings(config.notify_channel_timeout_seconds, 0, 1)
                sender = Sender(channels, holder.encrypt_text_to, settings)
                try:
                    answers = asyncio.run(
                        sender.deliver(Digest(waiting=0, arrived=0, test=True), retry=False)
                    )
                finally:
                    sender.close()
            finally:
                holder.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    for answer in answers:
        channel = answer.channel
        how = f"encrypted to {channel.reviewer}'s OpenPGP key" if channel.encrypted else "plain"
        click.echo(f"{channel.label}, {how}: {_ANSWERS.get(answer.reason, answer.reason)}")
        for said in answer.said:
            click.echo(f"  Apprise said: {said}")
    failed = sum(1 for answer in answers if not answer.sent)
    if failed:
        fail(f"{failed} of {len(answers)} channels did not take the test digest.")
    click.echo(f"All {len(answers)} channels took the test digest.")
