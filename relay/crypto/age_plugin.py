"""``age-plugin-tiprelay``: stock ``age`` opens ``tiprelay-openpgp`` stanzas through gpg.

A reviewer whose key is OpenPGP (on disk or on a smartcard) keeps a small
identity file that holds no secret, only which key to use::

    # tiprelay OpenPGP identity ...
    AGE-PLUGIN-TIPRELAY-1...

``age -d -i that-file file.age`` starts this plugin (C2SP age-plugin,
``identity-v1``), hands it every stanza of the file's header, and gets back the
16-byte file key, which the reviewer's own gpg unwraps through
:class:`~relay.crypto.openpgp_identity.GpgIdentity`. age decrypts the payload.

The identity's data (bech32) is a version byte, the 20-byte primary-key
fingerprint, and optionally the gpg home as UTF-8. An identity without data
(``age -d -j tiprelay``) tries every secret key the reviewer's gpg holds.

gpg must never touch the pipes to age: python-gnupg gives it pipes of its own,
and its agent asks for a passphrase or PIN with pinentry on the terminal named
by GPG_TTY, which :func:`main` sets from the controlling terminal when unset.

Wrapping (``recipient-v1``) is refused with a message: the relay writes
these stanzas.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import bech32, primitives
from .errors import AgeError, HeaderError, KeyFormatError
from .format import Stanza
from .openpgp_gpg import FINGERPRINT, GpgError, open_gpg, point_pinentry_at_terminal
from .openpgp_identity import GpgIdentity, stanza_fingerprint
from .openpgp_recipient import STANZA_TYPE
from .plugin_ipc import ClientGoneError, PluginProtocolError, StanzaChannel

PLUGIN_NAME = "tiprelay"
IDENTITY_HRP = f"age-plugin-{PLUGIN_NAME}-"
IDENTITY_VERSION = 1
_FINGERPRINT_BYTES = 20
_MAX_HOME_BYTES = 1024
_MAX_FILE_INDEX_DIGITS = 9


@dataclass(frozen=True)
class PluginIdentity:
    """Which OpenPGP key opens stanzas (None: any the gpg holds), in which gpg home."""

    fingerprint: str | None
    gpg_home: Path | None = None

    def __str__(self) -> str:
        return encode_identity(self)


def encode_identity(identity: PluginIdentity) -> str:
    """The ``AGE-PLUGIN-TIPRELAY-1...`` string."""
    if identity.fingerprint is None:
        if identity.gpg_home is not None:
            raise ValueError("an identity naming a gpg home must name a key")
        return bech32.encode(IDENTITY_HRP, b"").upper()
    if not FINGERPRINT.fullmatch(identity.fingerprint):
        raise KeyFormatError("An OpenPGP fingerprint is 40 upper-case hex digits.")
    data = bytes([IDENTITY_VERSION]) + bytes.fromhex(identity.fingerprint)
    if identity.gpg_home is not None:
        home = os.fsencode(identity.gpg_home)
        if not 0 < len(home) <= _MAX_HOME_BYTES or b"\0" in home:
            raise ValueError("the gpg home path is empty, too long or holds a NUL byte")
        data += home
    return bech32.encode(IDENTITY_HRP, data).upper()


def decode_identity(text: str) -> PluginIdentity:
    """Parse an ``AGE-PLUGIN-TIPRELAY-1...`` string; KeyFormatError if it is not ours."""
    if text != text.upper():
        raise KeyFormatError("A tiprelay plugin identity is written in upper case.")
    hrp, data = bech32.decode(text)
    if hrp != IDENTITY_HRP:
        raise KeyFormatError("This is not a tiprelay plugin identity (AGE-PLUGIN-TIPRELAY-1...).")
    if not data:
        return PluginIdentity(None)
    if data[0] != IDENTITY_VERSION:
        raise KeyFormatError(
            f"This tiprelay plugin identity has version {data[0]}; this plugin reads "
            f"version {IDENTITY_VERSION}. Update tiprelay."
        )
    fingerprint, home = data[1 : 1 + _FINGERPRINT_BYTES], data[1 + _FINGERPRINT_BYTES :]
    if len(fingerprint) != _FINGERPRINT_BYTES or len(home) > _MAX_HOME_BYTES or b"\0" in home:
        raise KeyFormatError("This tiprelay plugin identity is malformed.")
    return PluginIdentity(fingerprint.hex().upper(), Path(os.fsdecode(home)) if home else None)


def identity_file_text(identity: PluginIdentity, user_ids: Sequence[str] = ()) -> str:
    """An identity file stock ``age -d -i`` reads: comments, then the identity."""
    who = f" ({'; '.join(user_ids)})" if user_ids else ""
    lines = [
        f"# tiprelay OpenPGP identity for key {identity.fingerprint}{who}",
        "# No secret here: your gpg opens the file key (agent, pinentry, smartcard).",
        "# Use: age -d -i THIS_FILE FILE.age  (age-plugin-tiprelay must be on PATH)",
    ]
    if identity.gpg_home is not None:
        lines.append(f"# gpg home: {identity.gpg_home}")
    return "\n".join([*lines, str(identity)]) + "\n"


class StanzaOpener(Protocol):
    """What a reviewer's gpg does for the plugin (GpgIdentity; a fake in tests)."""

    fingerprints: frozenset[str]

    def unwrap(self, stanza: Stanza) -> bytes | None: ...


OpenerFactory = Callable[[Path | None], StanzaOpener]


@dataclass(frozen=True)
class _FileStanza:
    file_index: int
    stanza: Stanza


def _read_identity_phase(channel: StanzaChannel) -> tuple[list[str], list[_FileStanza]]:
    identities: list[str] = []
    stanzas: list[_FileStanza] = []
    for command in channel.read_phase():
        if command.type == "add-identity":
            if len(command.args) != 1:
                raise PluginProtocolError("add-identity takes exactly one argument.")
            identities.append(command.args[0])
        elif command.type == "recipient-stanza":
            if len(command.args) < 2:
                raise PluginProtocolError("recipient-stanza needs a file index and a type.")
            index_text = command.args[0]
            if not index_text.isdecimal() or len(index_text) > _MAX_FILE_INDEX_DIGITS:
                raise PluginProtocolError("recipient-stanza has an invalid file index.")
            index = int(index_text)
            if stanzas and index < stanzas[-1].file_index:
                raise PluginProtocolError("recipient-stanza file indices went backwards.")
            stanza = Stanza(command.args[1], command.args[2:], command.body)
            stanzas.append(_FileStanza(index, stanza))
        # Anything else is grease or a later extension: ignored, as the spec requires.
    return identities, stanzas


class _IdentitySession:
    """Phase 2 of ``identity-v1``: errors, messages and file keys sent to age."""

    def __init__(self, channel: StanzaChannel, open_gpg: OpenerFactory) -> None:
        self._channel = channel
        self._open_gpg = open_gpg
        self._openers: dict[Path | None, StanzaOpener] = {}
        self._failed: set[int] = set()

    def error(self, args: Sequence[str], message: str) -> None:
        self._channel.ask("error", args, message.encode("utf-8"))

    def identity_error(self, index: int, message: str) -> None:
        self._failed.add(index)
        self.error(("identity", str(index)), message)

    def opener(self, home: Path | None) -> StanzaOpener:
        if home not in self._openers:
            self._openers[home] = self._open_gpg(home)
        return self._openers[home]

    def run(self, identity_texts: list[str], stanzas: list[_FileStanza]) -> None:
        identities: list[PluginIdentity] = []
        for index, text in enumerate(identity_texts):
            try:
                identities.append(decode_identity(text))
            except KeyFormatError as exc:
                self.identity_error(index, str(exc))
        if self._failed:  # the spec: no unwrapping at all with any invalid identity
            return
        files: dict[int, list[Stanza]] = {}
        for item in stanzas:
            files.setdefault(item.file_index, []).append(item.stanza)
        for file_index, file_stanzas in files.items():
            if self._valid(file_index, file_stanzas):
                self._unwrap_file(file_index, file_stanzas, identities)

    def _valid(self, file_index: int, stanzas: list[Stanza]) -> bool:
        for stanza_index, stanza in enumerate(stanzas):
            if stanza.type != STANZA_TYPE:
                continue
            try:
                stanza_fingerprint(stanza)
            except HeaderError as exc:
                self.error(("stanza", str(file_index), str(stanza_index)), str(exc))
                return False
        return True

    def _unwrap_file(
        self, file_index: int, stanzas: list[Stanza], identities: list[PluginIdentity]
    ) -> None:
        for index, identity in enumerate(identities):
            if index in self._failed:
                continue
            ours = [
                s for s in stanzas
                if s.type == STANZA_TYPE and identity.fingerprint in (None, s.args[0])
            ]
            if not ours:
                continue
            file_key = self._unwrap_with(index, identity, ours)
            if file_key is not None:
                self._channel.ask("file-key", (str(file_index),), file_key)
                return

    def _unwrap_with(
        self, index: int, identity: PluginIdentity, stanzas: list[Stanza]
    ) -> bytes | None:
        where = f"gpg home {identity.gpg_home}" if identity.gpg_home else "your gpg"
        try:
            gpg = self.opener(identity.gpg_home)
        except GpgError as exc:
            self.identity_error(index, str(exc))
            return None
        for stanza in stanzas:
            fingerprint = stanza.args[0]
            if fingerprint not in gpg.fingerprints:
                if identity.fingerprint is None:
                    continue  # any-key identity: this one is someone else's
                self.identity_error(
                    index,
                    f"This file is encrypted to OpenPGP key {fingerprint}, but {where} holds "
                    "no secret key for it. For a smartcard, insert it and run "
                    "`gpg --card-status` once so gpg knows which key the card holds.",
                )
                return None
            self._channel.ask(
                "msg",
                body=f"opening the file key with OpenPGP key {fingerprint} (gpg may ask "
                "for its passphrase or smartcard PIN)".encode(),
            )
            try:
                file_key = gpg.unwrap(stanza)
            except AgeError as exc:  # GpgError: wrong passphrase, no card...; HeaderError
                self.identity_error(index, str(exc))
                return None
            if file_key is not None and len(file_key) == primitives.FILE_KEY_SIZE:
                return file_key
            if identity.fingerprint is not None:
                self.identity_error(
                    index,
                    f"{where} holds the secret primary key {fingerprint} but not the secret "
                    "of the encryption subkey this file is encrypted to.",
                )
                return None
        return None


def serve_identity_v1(
    channel: StanzaChannel, open_gpg: OpenerFactory = GpgIdentity
) -> None:
    """Run the whole ``identity-v1`` state machine over ``channel``."""
    identities, stanzas = _read_identity_phase(channel)
    _IdentitySession(channel, open_gpg).run(identities, stanzas)
    channel.send("done")


REFUSE_WRAPPING = (
    "the tiprelay plugin only decrypts: files for OpenPGP reviewers are written by the "
    "relay. To encrypt with stock age, use the reviewers' age1... recipients"
)


def serve_recipient_v1(channel: StanzaChannel) -> None:
    """Refuse ``recipient-v1`` with a message age shows (the spec: fail, never wrap partly)."""
    channel.read_phase()
    channel.ask("error", ("internal",), REFUSE_WRAPPING.encode())
    channel.send("done")


def _normalise_fingerprint(text: str) -> str:
    fingerprint = "".join(text.split()).upper().removeprefix("0X")
    if not FINGERPRINT.fullmatch(fingerprint):
        raise KeyFormatError(
            f"{text!r} is not an OpenPGP v4 fingerprint (40 hex digits; "
            "see `gpg --list-secret-keys --with-colons`, the fpr: line)."
        )
    return fingerprint


def print_identity(fingerprint_text: str, gpg_home: Path | None) -> int:
    """``--identity``: check gpg holds the key's secret, then print an identity file."""
    fingerprint = _normalise_fingerprint(fingerprint_text)
    gpg = GpgIdentity(gpg_home)
    if fingerprint not in gpg.fingerprints:
        where = f"gpg home {gpg_home}" if gpg_home else "your gpg"
        raise KeyFormatError(
            f"{where} holds no secret key {fingerprint} (see `gpg --list-secret-keys`; "
            "for a smartcard, run `gpg --card-status` first)."
        )
    identity = PluginIdentity(fingerprint, gpg_home.absolute() if gpg_home else None)
    listing = open_gpg(gpg_home).list_keys(keys=[fingerprint])
    user_ids = [str(uid) for key in listing for uid in key.get("uids", [])]
    sys.stdout.write(identity_file_text(identity, user_ids[:1]))
    return 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="age-plugin-tiprelay",
        description=(
            "Lets stock age decrypt tiprelay files sealed to an OpenPGP key, with your gpg. "
            "Example: age-plugin-tiprelay --identity FINGERPRINT > tiprelay-identity.txt; "
            "then: age -d -i tiprelay-identity.txt FILE.age"
        ),
    )
    parser.add_argument("--age-plugin", metavar="STATE_MACHINE", help="(used by age)")
    parser.add_argument(
        "--identity", metavar="FINGERPRINT",
        help="print an identity file for this OpenPGP key (its primary-key fingerprint)",
    )
    parser.add_argument(
        "--gpg-home", type=Path, metavar="DIR",
        help="a gpg home other than GNUPGHOME or ~/.gnupg (recorded in the identity)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``age-plugin-tiprelay`` executable."""
    options = _arguments().parse_args(argv)
    if options.age_plugin is None:
        if options.identity is None:
            _arguments().print_usage(sys.stderr)
            return 2
        try:
            return print_identity(options.identity, options.gpg_home)
        except AgeError as exc:
            print(f"age-plugin-tiprelay: {exc}", file=sys.stderr)
            return 1
    serve = {"identity-v1": serve_identity_v1, "recipient-v1": serve_recipient_v1}.get(
        options.age_plugin
    )
    if serve is None:
        print(f"age-plugin-tiprelay: unknown state machine {options.age_plugin!r}", file=sys.stderr)
        return 1
    # age ends a plugin with SIGINT once it has what it needs: just stop.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    point_pinentry_at_terminal()
    channel = StanzaChannel(sys.stdin.buffer, sys.stdout.buffer)
    try:
        serve(channel)
    except (ClientGoneError, BrokenPipeError):
        return 1  # age has stopped listening (after an error, it closes at once)
    except AgeError as exc:
        # age 1.1 throws a plugin's stderr away: the error stanza is the only way to say it.
        with contextlib.suppress(AgeError, OSError):
            channel.ask("error", ("internal",), str(exc).encode())
        return 1
    return 0


__all__ = [
    "IDENTITY_HRP",
    "PLUGIN_NAME",
    "PluginIdentity",
    "decode_identity",
    "encode_identity",
    "identity_file_text",
    "main",
    "serve_identity_v1",
    "serve_recipient_v1",
]
