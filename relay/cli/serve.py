"""``tiprelay serve``: run the relay for real (production)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from relay.cli.common import fail, no_core_dumps
from relay.config import load_config
from relay.errors import ConfigError, KeyringError, TiprelayError
from relay.log import configure_logging

KEYS_HINT = (
    "Put one <name>.toml per reviewer into the keys folder, with public material only: "
    'name = "alice", age_recipient = "age1...", and optionally api_key = "ed25519:...". '
    "Never put a private key there. Then start again."
)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML config file (defaults: config/relay.toml; TIPRELAY_* variables override).",
)
def serve(config_path: Path | None) -> None:
    """Run the relay on the configured host and port until stopped.

    Refuses to start without valid reviewer keys in the keys folder. Send
    SIGHUP to reload the keys (a removed reviewer stops working at once).

    \b
    Example:
      tiprelay serve --config /etc/tiprelay/relay.toml
    """
    # No-JS plaintext passes through this process's memory: never into a core file.
    no_core_dumps()
    # Imported here so that `tiprelay --help` stays fast and light.
    from relay.server.app import create_app, run_relay

    try:
        config = load_config(os.environ, config_path)
    except ConfigError as error:
        fail(str(error), "Check the setting named above; config/relay.toml documents each one.")
    configure_logging(config.log_format, config.log_level)
    try:
        app = create_app(config, reload_keys_on_sighup=True)
    except KeyringError as error:
        fail(f"Not starting: {error}", KEYS_HINT)
    except TiprelayError as error:
        fail(f"Not starting: {error}")
    run_relay(app, config)
