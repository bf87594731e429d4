"""Reviewer keys: ``tiprelay reviewer-key`` (reviewer) and ``tiprelay reviewer add|remove|list``
(operator).

The reviewer makes an API signing key on their online machine and hands the
printed public line to the operator, with their ``age1...`` recipient. The
operator writes both into ``keys/<name>.toml`` with ``tiprelay reviewer add``
and reloads the relay (SIGHUP or restart). Nothing secret ever goes to keys/.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from relay.crypto.errors import KeyFormatError
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey, parse_public_key
from relay.errors import KeyringError

_RELOAD_HINT = "Reload the relay so it takes effect: send it SIGHUP (or restart it)."


@click.command("reviewer-key")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the secret signing key (created 0600; never overwritten).",
)
def reviewer_key(output: Path) -> None:
    """Make a reviewer API signing key; print the public line for the operator.

    Keep FILE on the machine that runs `tiprelay pull`. Send the printed
    `ed25519:...` line (public, safe to share) to the relay's operator.

    \b
    Example:
      tiprelay reviewer-key -o ~/.tiprelay/api.key
    """
    key = SigningKey.generate()
    try:
        # O_EXCL: refuse to overwrite; 0600 from the start, never readable by others.
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(
            f"{output} already exists; choose another name (an existing key is never overwritten)."
        ) from None
    except OSError as exc:
        raise click.ClickException(f"Cannot create {output}: {exc.strerror}.") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as key_file:
        key_file.write(key.to_key_file_text())
        key_file.flush()
        os.fsync(key_file.fileno())
    click.echo(key.public_key_text)


_keys_dir_option = click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="keys",
    show_default=True,
    envvar="TIPRELAY_KEYS_DIR",
    help="The relay's keys/ folder (public keys only).",
)


@click.group()
def reviewer() -> None:
    """Add, remove and list the relay's reviewers (operator; public keys only).

    \b
    Example:
      tiprelay reviewer add alice --age-recipient age1... --api-key ed25519:...
      tiprelay reviewer list
      tiprelay reviewer remove alice
    """


@reviewer.command("add")
@click.argument("name")
@click.option("--age-recipient", metavar="age1...", help="Their age recipient.")
@click.option(
    "--openpgp-key",
    "openpgp_key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Instead of --age-recipient: their OpenPGP public key, ASCII-armored "
    "(gpg --export --armor FINGERPRINT > FILE); the key may live on a smartcard.",
)
@click.option(
    "--api-key",
    metavar="ed25519:...",
    help="Their API key line from `tiprelay reviewer-key` (omit: no API access).",
)
@_keys_dir_option
def add(
    name: str,
    age_recipient: str | None,
    openpgp_key_path: Path | None,
    api_key: str | None,
    keys_dir: Path,
) -> None:
    """Write keys/NAME.toml for a reviewer; submissions are then encrypted to them too.

    A reviewer is an age recipient or an OpenPGP key: give exactly one of
    --age-recipient and --openpgp-key. The OpenPGP key is checked with gpg and
    copied to keys/FINGERPRINT.asc.

    \b
    Examples:
      tiprelay reviewer add alice --age-recipient age1... --api-key ed25519:...
      tiprelay reviewer add olga --openpgp-key olga.asc --api-key ed25519:...
    """
    from relay.keyring import write_reviewer_file

    _check_name(name)
    if (age_recipient is None) == (openpgp_key_path is None):
        raise click.ClickException(
            "Give exactly one of --age-recipient age1... and --openpgp-key FILE."
        )
    recipient: X25519Recipient | None = None
    openpgp_key: bytes | None = None
    if age_recipient is not None:
        try:
            recipient = X25519Recipient.parse(age_recipient.strip())
        except KeyFormatError as exc:
            raise click.ClickException(
                f"--age-recipient is not an age1... recipient: {exc}"
            ) from None
    if openpgp_key_path is not None:
        openpgp_key = _read_openpgp_key(openpgp_key_path)
    try:
        public_key = parse_public_key(api_key.strip()) if api_key else None
    except KeyFormatError as exc:
        raise click.ClickException(
            f"--api-key is not the public line `tiprelay reviewer-key` prints: {exc}"
        ) from None
    if (keys_dir / f"{name}.toml").exists():
        raise click.ClickException(
            f"A reviewer named {name!r} already exists; remove it first to replace it."
        )
    keys_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = write_reviewer_file(
            keys_dir, name, recipient, public_key, openpgp_public_key=openpgp_key
        )
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added reviewer {name} ({path}). {_RELOAD_HINT}")
    if openpgp_key is not None:
        _warn_public_user_ids(keys_dir, name)
    _ensure_salt(keys_dir)


def _warn_public_user_ids(keys_dir: Path, name: str) -> None:
    from relay.keyring import load_keyring

    reviewer = next(r for r in load_keyring(keys_dir).reviewers if r.name == name)
    assert reviewer.openpgp_key is not None
    click.echo(
        "Everyone who opens the relay's page, and anyone who seizes the server, can read "
        "this key and its user IDs (third-party signatures were removed):"
    )
    for user_id in reviewer.openpgp_key.user_ids:
        click.echo(f"  {user_id}")
    click.echo(f"Fingerprint: {reviewer.openpgp_key.fingerprint}")


def _read_openpgp_key(path: Path) -> bytes:
    from relay.crypto.openpgp_keys import MAX_PUBLIC_KEY_BYTES

    with path.open("rb") as handle:
        data = handle.read(MAX_PUBLIC_KEY_BYTES + 1)
    if len(data) > MAX_PUBLIC_KEY_BYTES:
        raise click.ClickException(
            f"{path} is larger than {MAX_PUBLIC_KEY_BYTES} bytes; export only the "
            "reviewer's key: gpg --export --armor --export-options export-minimal FINGERPRINT"
        )
    return data


def _ensure_salt(keys_dir: Path) -> None:
    """Make the conversation salt if keys/ has none yet, and say so."""
    from relay.conversation_salt import ensure_conversation_salt, salt_path

    try:
        _salt, made = ensure_conversation_salt(keys_dir)
    except (KeyringError, OSError) as exc:
        raise click.ClickException(f"The conversation salt: {exc}") from None
    if made:
        click.echo(
            f"Made the relay's conversation salt ({salt_path(keys_dir)}). Back it up with "
            "keys/: if it is lost, no source can find their replies again."
        )


@click.command("conversation-salt")
@_keys_dir_option
def conversation_salt(keys_dir: Path) -> None:
    """Make the relay's conversation salt once (if missing) and print it.

    Replies to sources (conversations) need it; `tiprelay reviewer add` makes
    it too. It is public. It is never replaced: back it up with keys/.

    \b
    Example:
      tiprelay conversation-salt --keys-dir /etc/tiprelay/keys
    """
    from relay.conversation_salt import ensure_conversation_salt

    _ensure_salt(keys_dir)
    salt, _made = ensure_conversation_salt(keys_dir)
    click.echo(salt.hex())


@reviewer.command("remove")
@click.argument("name")
@_keys_dir_option
def remove(name: str, keys_dir: Path) -> None:
    """Delete keys/NAME.toml: after a reload the reviewer's API key stops working.

    Submissions already stored stay readable by them; new ones are not
    encrypted to them.

    \b
    Example:
      tiprelay reviewer remove alice
    """
    from relay.keyring import openpgp_key_file_of

    _check_name(name)
    path = keys_dir / f"{name}.toml"
    key_file = openpgp_key_file_of(path)
    try:
        path.unlink()
    except FileNotFoundError:
        raise click.ClickException(f"There is no reviewer named {name!r} in {keys_dir}.") from None
    if key_file is not None:
        key_file.unlink(missing_ok=True)
    click.echo(f"Removed reviewer {name}. {_RELOAD_HINT}")


@reviewer.command("list")
@_keys_dir_option
def list_reviewers(keys_dir: Path) -> None:
    """Show each reviewer: name, age recipient or OpenPGP key, API key.

    The last line is the recipient-set fingerprint: the one the relay's page
    shows sources, and the one every reviewer's `tiprelay pin-team` prints.
    After adding or removing a reviewer, each reviewer pins the team again and
    compares theirs with it.

    \b
    Example:
      tiprelay reviewer list --keys-dir /etc/tiprelay/keys
    """
    from relay.crypto.signing import format_public_key
    from relay.keyring import load_keyring

    try:
        keyring = load_keyring(keys_dir)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    for entry in keyring.reviewers:
        api = format_public_key(entry.api_key) if entry.api_key else "(no API key)"
        click.echo(f"{entry.name}\t{entry.recipient}\t{api}")
    if keyring.reviewers:
        fingerprint = keyring.recipients_document()["fingerprint"]
        click.echo(f"Recipient-set fingerprint (sources see it; pin-team prints it): {fingerprint}")


def _check_name(name: str) -> None:
    from relay.keyring import REVIEWER_NAME

    if not REVIEWER_NAME.fullmatch(name):
        raise click.ClickException(
            f"{name!r} is not a valid reviewer name: use lower-case letters, digits, - and _."
        )
