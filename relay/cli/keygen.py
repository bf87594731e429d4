"""``tiprelay keygen``: make a reviewer's age identity (offline machine)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from relay.cli.common import fail, passphrase_reader, user_errors
from relay.crypto.identities import X25519Identity
from relay.crypto.identity_file import protect_identity_file


def _new_passphrase(passphrase_file: Path | None) -> bytes:
    if passphrase_file is not None:
        return passphrase_reader(passphrase_file, "")()
    passphrase = passphrase_reader(None, "Passphrase for the new identity: ")()
    if len(passphrase) < 8:
        fail("The passphrase is too short (at least 8 characters; a few words is best).")
    if getpass.getpass("Repeat the passphrase: ").encode("utf-8") != passphrase:
        fail("The two passphrases differ; nothing was written.")
    return passphrase


@click.command()
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="Where to write the identity (never overwritten).")
@click.option("--no-passphrase", is_flag=True,
              help="Write the identity unprotected (only for throwaway or demo keys).")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the passphrase from the first line of this file instead of asking.")
@click.option("--work-factor", type=click.IntRange(10, 22), default=18, show_default=True,
              help="scrypt work factor (log2 N) protecting the identity file.")
def keygen(output: Path, no_passphrase: bool, passphrase_file: Path | None,
           work_factor: int) -> None:
    """Make a new age identity and print its recipient (age1...).

    The identity is the reviewer's decryption key: keep it on the offline
    machine. By default it is protected by a passphrase, in a format stock
    `age -d -i FILE` also reads. The recipient printed on stdout is public:
    hand it to the operator.

    \b
    Example:
      tiprelay keygen -o ~/reviewer.identity
      age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
    """
    if no_passphrase and passphrase_file is not None:
        fail("--no-passphrase and --passphrase-file contradict each other.")
    with user_errors():
        if output.exists():
            fail(f"{output} already exists; tiprelay never overwrites an identity.",
                 "Choose another file name, or move the old identity away first.")
        identity = X25519Identity.generate()
        text = f"# public key: {identity.recipient}\n{identity}\n"
        data = text.encode("ascii")
        if not no_passphrase:
            data = protect_identity_file(text, _new_passphrase(passphrase_file), work_factor)
        # O_EXCL: never clobber an identity, even one created meanwhile.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    click.echo(str(identity.recipient))
