"""The ``tiprelay`` command line.

Subcommands are imported only when they run: offline commands (``keygen``,
``decrypt``) must never import aiohttp, and a short start-up matters when the
CLI is used in pipelines.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute"; the module lives in relay.cli.
COMMANDS: dict[str, str] = {
    "keygen": "relay.cli.keygen:keygen",
    "encrypt": "relay.cli.crypt:encrypt",
    "decrypt": "relay.cli.crypt:decrypt",
    "serve": "relay.cli.serve:serve",
    "demo": "relay.cli.demo:demo",
    "reviewer-key": "relay.cli.reviewer:reviewer_key",
    "reviewer": "relay.cli.reviewer:reviewer",
    "pull": "relay.cli.pull:pull",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: Any = getattr(importlib.import_module(module_name), attribute)
        return command  # type: ignore[no-any-return]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tiprelay")
def main() -> None:
    """tiprelay: a relay that receives tips and stores only age ciphertext.

    \b
    Example:
      tiprelay keygen -o reviewer.identity
      tiprelay encrypt -r age1... -o tip.age tip.txt
      tiprelay decrypt -i reviewer.identity tip.age
    """
