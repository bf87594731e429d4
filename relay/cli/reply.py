"""``tiprelay pin-team`` and ``tiprelay reply``: the offline half of replying.

Offline commands: nothing here may import aiohttp (import-linter checks it).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from relay.cli.common import fail, no_core_dumps, user_errors
from relay.team import default_team_path, openpgp_key_folder, pin_team, remembered_cases_folder

_SUBMISSION_ID = re.compile(r"[0-9a-f]{32}")
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_ATTACHMENT_BYTES = 8 * 1024 * 1024
"""Each; the relay refuses replies above ``max_reply_bytes`` (16 MiB) anyway."""


@click.command(name="pin-team")
@click.option("--team", "team_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to keep the pin (default: ~/.config/tiprelay/team).")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def pin_team_command(team_path: Path | None, files: tuple[Path, ...]) -> None:
    """Pin the team's recipients (age and OpenPGP) on this (offline) machine, from FILES.

    FILES are what the team brings by hand: recipient files (one age1... per
    line), the relay's keys/<name>.toml reviewer files (for an OpenPGP
    reviewer, with its <FINGERPRINT>.asc beside it) or armored OpenPGP public
    keys (.asc). Each OpenPGP key is checked with gpg; a revoked, expired or
    weak one is refused. `tiprelay reply` encrypts to exactly this set and
    refuses a pulled set with a key it lacks. Pinning again replaces the set.

    \b
    Examples:
      tiprelay pin-team alice.toml bob.toml carol-recipient.txt
      tiprelay pin-team alice.toml olga.toml olga-key.asc
    """
    target = team_path or default_team_path()
    with user_errors():
        team = pin_team(target, files)
    click.echo(f"Pinned {len(team)} recipient(s) in {target}:")
    for recipient in team.age:
        click.echo(f"  {recipient}")
    for key in team.openpgp:
        names = f"  ({', '.join(key.user_ids)})" if key.user_ids else ""
        click.echo(f"  {key}{names}")
    if team.openpgp:
        click.echo(f"OpenPGP keys kept in {openpgp_key_folder(target)}")
    click.echo(f"Fingerprint: {team.fingerprint}")
    click.echo("Compare it with the one the relay's page shows sources.")


def _read_limited(path: Path, limit: int, what: str) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        fail(f"{path}: the {what} is larger than {limit} bytes.")
    return data


@click.command()
@click.option("-i", "--identity", "identity_paths", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your identity file (to read the bundle's tips and replies).")
@click.option("--gpg", "use_gpg", is_flag=True,
              help="Read the bundle with your own gpg (an OpenPGP reviewer: its agent, "
                   "pinentry and smartcard, as set up); instead of or besides -i.")
@click.option("--gpg-homedir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --gpg: this gpg home instead of your usual one.")
@click.option("-o", "--output", "out_dir",
              type=click.Path(file_okay=False, path_type=Path),
              help="The folder `tiprelay decrypt` writes to; the reply's plaintext goes "
                   "into the thread there (default: the one it wrote to last).")
@click.option("--to", "submission_id", required=True, metavar="SUBMISSION_ID",
              help="The tip or follow-up you answer (its id, 32 hex digits).")
@click.option("-m", "--message", help="The reply's text.")
@click.option("--message-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the reply's text (UTF-8) from this file.")
@click.option("--attach", "attachments", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Attach this file (repeatable).")
@click.option("--team", "team_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The pinned team file (default: ~/.config/tiprelay/team).")
@click.option("--ring-size", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Reply slots per conversation: the relay's reply_ring_size.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the identity's passphrase from this file instead of asking.")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def reply(
    identity_paths: tuple[Path, ...],
    use_gpg: bool,
    gpg_homedir: Path | None,
    out_dir: Path | None,
    submission_id: str,
    message: str | None,
    message_file: Path | None,
    attachments: tuple[Path, ...],
    team_path: Path | None,
    ring_size: int,
    passphrase_file: Path | None,
    bundle_dir: Path,
) -> None:
    """Write a reply to a source, offline, into BUNDLE_DIR/outbox/ (then: tiprelay push).

    The reply goes to the thread of SUBMISSION_ID, numbered after every reply
    the thread has, MACed with the conversation's auth key and encrypted to the
    source and to the pinned team only. The outbox holds ciphertext, slot tag
    and expected slot hash, nothing else; the plaintext stays in OUT_DIR.

    \b
    Examples:
      tiprelay reply -i me.identity bundle/ --to 0f3c... -m "Go to ..."
      tiprelay reply -i me.identity -o decrypted/ bundle/ --to 0f3c... --message-file r.txt
      tiprelay reply --gpg bundle/ --to 0f3c... -m "Go to ..."   (an OpenPGP reviewer)
    """
    no_core_dumps()
    if not identity_paths and not use_gpg:
        fail("Nothing to read the bundle with.",
             "Pass -i IDENTITY_FILE, or --gpg for an OpenPGP key.")
    if gpg_homedir is not None and not use_gpg:
        fail("--gpg-homedir is used with --gpg.")
    if out_dir is None:
        out_dir = remembered_cases_folder()
        if out_dir is None:
            fail(
                "Which folder holds the decrypted threads?",
                "Pass -o OUT_DIR: the folder `tiprelay decrypt -i ... BUNDLE_DIR -o OUT_DIR` "
                "writes to (reply remembers it once decrypt has run on this machine).",
            )
    if (message is None) == (message_file is None):
        fail("Give the reply's text with -m TEXT or --message-file FILE (one of them).")
    if not _SUBMISSION_ID.fullmatch(submission_id):
        fail(f"{submission_id!r} is not a submission id (32 lower-case hex digits).")
    from relay.cli.crypt import load_identities
    from relay.replying import write_reply

    with user_errors():
        if message_file is not None:
            raw = _read_limited(message_file, MAX_MESSAGE_BYTES, "message")
            try:
                message = raw.decode("utf-8")
            except UnicodeDecodeError:
                fail(f"{message_file} is not UTF-8 text.")
        assert message is not None
        files = [
            (path.name, _read_limited(path, MAX_ATTACHMENT_BYTES, "attachment"))
            for path in attachments
        ]
        identities = load_identities(
            identity_paths, passphrase_file, gpg=use_gpg, gpg_home=gpg_homedir
        )
        written = write_reply(
            bundle_dir,
            out_dir,
            identities,
            submission_id=submission_id,
            message=message,
            attachments=files,
            team_path=team_path or default_team_path(),
            ring_size=ring_size,
        )
    for warning in written.warnings:
        click.echo(warning, err=True)
    click.echo(
        f"Reply n={written.n} written: encrypted to the source and {written.team_size} pinned "
        f"team key(s), in {bundle_dir / 'outbox' / written.outbox_entry}."
    )
    click.echo(f"Its plaintext: {written.folder}")
    click.echo(f"Next, on the online machine: tiprelay push --server URL --key FILE {bundle_dir}")
