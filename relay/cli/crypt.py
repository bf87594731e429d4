"""``tiprelay encrypt`` and ``tiprelay decrypt``: single age files and bundles.

Offline commands: nothing here may import aiohttp (import-linter checks it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

from relay.cli.common import atomic_output, fail, no_core_dumps, passphrase_reader, user_errors
from relay.crypto.decrypt import decrypt_stream
from relay.crypto.encrypt import encrypt_stream
from relay.crypto.errors import KeyFormatError
from relay.crypto.identity_file import load_identity_file
from relay.crypto.recipients import X25519Recipient, parse_recipient
from relay.crypto.unwrap import Identity
from relay.workspace import DEFAULT_TOTAL


@contextlib.contextmanager
def _input(path: Path | None) -> Iterator[BinaryIO]:
    if path is None:
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as handle:
            yield handle


def _recipients(texts: tuple[str, ...], files: tuple[Path, ...]) -> list[X25519Recipient]:
    found = [parse_recipient(text) for text in texts]
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise KeyFormatError(f"The recipients file {path} is not text.") from None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    found.append(parse_recipient(line))
                except KeyFormatError as exc:
                    raise KeyFormatError(f"Line {number} of {path}: {exc}") from None
    return found


@click.command()
@click.option("-r", "--recipient", "recipient_texts", multiple=True, metavar="age1...",
              help="Encrypt to this recipient (repeatable).")
@click.option("-R", "--recipients-file", "recipient_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Encrypt to every recipient listed in this file (repeatable).")
@click.option("-a", "--armor", is_flag=True, help="Write ASCII armor instead of binary.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (all or nothing) instead of stdout.")
@click.argument("input_path", metavar="[IN]", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def encrypt(recipient_texts: tuple[str, ...], recipient_files: tuple[Path, ...], armor: bool,
            output: Path | None, input_path: Path | None) -> None:
    """Encrypt a file (or stdin) to age recipients; stock `age -d` decrypts it.

    \b
    Example:
      tiprelay encrypt -r age1... -o report.pdf.age report.pdf
      tar -c folder | tiprelay encrypt -r age1... -r age1... > folder.tar.age
    """
    with user_errors():
        recipients = _recipients(recipient_texts, recipient_files)
        if not recipients:
            fail("No recipient given.", "Pass -r age1... (the reviewer's public key).")
        if output is None and not armor and sys.stdout.isatty():
            fail("Refusing to write binary ciphertext to a terminal.",
                 "Use -o FILE, redirect stdout, or pass -a for armored text.")
        with _input(input_path) as src, atomic_output(output) as dst:
            encrypt_stream(src, dst, recipients, armor=armor)


def load_identities(
    paths: tuple[Path, ...],
    passphrase_file: Path | None,
    *,
    gpg: bool = False,
    gpg_home: Path | None = None,
) -> list[Identity]:
    """Every identity in these files, and the reviewer's gpg if asked for; a
    passphrase is asked (once) only if needed."""
    ask = passphrase_reader(passphrase_file, "Passphrase for the identity file: ")
    cached: list[bytes] = []

    def ask_once() -> bytes:
        if not cached:
            cached.append(ask())
        return cached[0]

    identities: list[Identity] = []
    for path in paths:
        identities.extend(load_identity_file(path, ask_once))
    if gpg:
        from relay.crypto.openpgp_identity import GpgIdentity

        identities.append(GpgIdentity(gpg_home))
    return identities


def _decrypt_bundle(
    bundle_dir: Path,
    out_dir: Path,
    identities: list[Identity],
    ring_size: int,
    scrub: bool,
    max_unpacked_total: int,
    safe_copies: bool = False,
) -> int:
    """Decrypt and thread a bundle, print its summary and the metadata each new file
    still carries (cleaned copies too, with ``scrub``); the exit status."""
    from relay.bundle import DECRYPTED, closing_line, decrypt_bundle, summary_lines
    from relay.bundle_metadata import metadata_summary
    from relay.scrub import ScrubLimits
    from relay.team import remember_cases_folder

    report = decrypt_bundle(bundle_dir, out_dir, identities, ring_size=ring_size)
    remember_cases_folder(out_dir)  # tiprelay reply finds the threads here without -o
    for line in summary_lines(report):
        click.echo(line)
    new_folders = [
        (outcome.info.id, outcome.folder)
        for outcome in report.outcomes
        if outcome.status == DECRYPTED and outcome.folder is not None
    ]
    limits = ScrubLimits(max_unpacked_total=max_unpacked_total)
    metadata, all_cleaned = metadata_summary(new_folders, out_dir, scrub, limits)
    for line in metadata:
        click.echo(line)
    all_safe = True
    if safe_copies:
        all_safe = _safe_copies(new_folders)
    click.echo(closing_line(report, out_dir))
    return 0 if report.all_readable and all_cleaned and all_safe else 1


def _safe_copies(new_folders: list[tuple[str, Path]]) -> bool:
    """decrypt --safe-copies: one line per attachment (relay.reviewer.safe_copy.folders)."""
    from relay.reviewer.safe_copy.folders import safe_copy_lines
    from relay.reviewer.safe_copy.sandbox import SandboxUnavailableError

    try:
        lines, all_made = safe_copy_lines(new_folders)
    except SandboxUnavailableError as exc:
        click.echo(f"WARNING: NO SAFE COPIES: {exc} (tiprelay safe-copy --check says more)")
        return False
    for line in lines:
        click.echo(line)
    return all_made


@click.command()
@click.option("-i", "--identity", "identity_paths", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Identity file (AGE-SECRET-KEY-1..., or passphrase-protected).")
@click.option("--gpg", "use_gpg", is_flag=True,
              help="Open OpenPGP reviewers' stanzas with your own gpg (its agent, "
                   "pinentry and smartcard, as set up); instead of or besides -i.")
@click.option("--gpg-homedir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --gpg: this gpg home instead of your usual one.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Output file (all or nothing); for a bundle, the output folder.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the identity's passphrase from this file instead of asking.")
@click.option("--scrub", is_flag=True,
              help="Bundles: also write copies without identifying metadata (mat2) "
                   "into OUT_DIR/scrubbed/.")
@click.option("--safe-copies", is_flag=True,
              help="Bundles: also write a PDF of page images of each attachment, made in "
                   "a sandbox, as <tip>/safe/NAME.safe.pdf (tiprelay safe-copy).")
@click.option("--ring-size", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Reply slots per conversation: the relay's reply_ring_size.")
@click.option("--max-unpacked-total", type=click.IntRange(1), default=DEFAULT_TOTAL,
              show_default=True,
              help="Bundles: bytes metadata inspection (and --scrub) may unpack and write in "
                   "total; an attachment that would go over it is marked NOT INSPECTED "
                   "(it is still decrypted as sent).")
@click.argument("input_path", metavar="[IN | BUNDLE_DIR]", required=False,
                type=click.Path(exists=True, path_type=Path))
def decrypt(identity_paths: tuple[Path, ...], use_gpg: bool, gpg_homedir: Path | None,
            output: Path | None, passphrase_file: Path | None,
            scrub: bool, safe_copies: bool, ring_size: int, max_unpacked_total: int,
            input_path: Path | None) -> None:
    """Decrypt an age file, or every submission in a pulled bundle.

    \b
    Examples:
      tiprelay decrypt -i reviewer.identity -o tip.tar tip.age
      tiprelay decrypt -i reviewer.identity BUNDLE_DIR -o OUT_DIR
      tiprelay decrypt -i reviewer.identity BUNDLE_DIR -o OUT_DIR --scrub
      tiprelay decrypt -i reviewer.identity BUNDLE_DIR -o OUT_DIR --safe-copies
      tiprelay decrypt --gpg BUNDLE_DIR -o OUT_DIR     (an OpenPGP reviewer)
    """
    no_core_dumps()  # before the identity or any plaintext is in memory
    if not identity_paths and not use_gpg:
        fail("Nothing to decrypt with.", "Pass -i IDENTITY_FILE, or --gpg for an OpenPGP key.")
    if gpg_homedir is not None and not use_gpg:
        fail("--gpg-homedir is used with --gpg.")
    with user_errors():
        identities = load_identities(
            identity_paths, passphrase_file, gpg=use_gpg, gpg_home=gpg_homedir
        )
        if input_path is not None and input_path.is_dir():
            if output is None:
                fail("Decrypting a bundle needs an output folder.", "Pass -o OUT_DIR.")
            sys.exit(_decrypt_bundle(input_path, output, identities, ring_size, scrub,
                                     max_unpacked_total, safe_copies))
        if scrub:
            fail("--scrub works on bundles only.", "Run tiprelay scrub on the decrypted files.")
        if safe_copies:
            fail("--safe-copies works on bundles only.",
                 "Run tiprelay safe-copy on the decrypted files.")
        with _input(input_path) as src, atomic_output(output, mode=0o600) as dst:
            decrypt_stream(src, dst, identities)
