"""The ``tiprelay`` command line.

Subcommands are imported only when they run: offline commands (``keygen``,
``decrypt``) must never import aiohttp, and a short start-up matters when the
CLI is used in pipelines.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> ("module:attribute", one-line help). The help is here so that
# `tiprelay --help` lists commands without importing any of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("relay.cli.keygen:keygen", "Make a reviewer's age identity (offline machine)."),
    "encrypt": ("relay.cli.crypt:encrypt", "Encrypt a file to age recipients."),
    "decrypt": ("relay.cli.crypt:decrypt", "Decrypt an age file or a pulled bundle (offline)."),
    "scrub": ("relay.cli.scrub:scrub", "Copy decrypted files without identifying metadata."),
    "safe-copy": (
        "relay.cli.safe_copy:safe_copy",
        "PDFs of page images from hostile documents, made in a sandbox (offline).",
    ),
    "serve": ("relay.cli.serve:serve", "Run the relay (production)."),
    "demo": ("relay.cli.demo:demo", "Run a throwaway local relay to try tiprelay out."),
    "reviewer-key": ("relay.cli.reviewer:reviewer_key", "Make a reviewer's API signing key."),
    "reviewer": ("relay.cli.reviewer:reviewer", "Add, remove or list reviewers (operators)."),
    "conversation-salt": (
        "relay.cli.reviewer:conversation_salt",
        "Make the relay's conversation salt once (operators).",
    ),
    "pull": ("relay.cli.pull:pull", "Download new submissions and replies into a bundle folder."),
    "pin-team": (
        "relay.cli.reply:pin_team_command",
        "Pin the team's recipients for replies (offline machine).",
    ),
    "reply": ("relay.cli.reply:reply", "Write a reply to a source into the outbox (offline)."),
    "notify-test": (
        "relay.cli.notify:notify_test",
        "Send a test digest to every notification channel (operators).",
    ),
    "push": ("relay.cli.push:push", "Upload the replies of a bundle's outbox to the relay."),
    "web-manifest": (
        "relay.cli.web:web_manifest",
        "Print the release manifest of the code sources get.",
    ),
    "verify-web": (
        "relay.cli.web:verify_web",
        "Check that a relay serves sources the code in a manifest.",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        command: Any = getattr(importlib.import_module(module_name), attribute)
        return command  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
