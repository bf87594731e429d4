"""Running gpg through python-gnupg, and reading what it says went wrong.

Every OpenPGP operation in tiprelay is gpg's: this module only starts it with
fixed options and turns its status lines into errors a person can act on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

import gnupg

from .errors import AgeError

# python-gnupg logs every command line and gpg's stderr at DEBUG; none of that
# belongs in the relay's logs.
logging.getLogger("gnupg").setLevel(logging.WARNING)

FINGERPRINT = re.compile(r"[0-9A-F]{40}")
KEY_ID = re.compile(r"[0-9A-F]{16}")
# Options for every gpg tiprelay starts: never ask, never reach the network.
BASE_OPTIONS = (
    "--no-tty",
    "--no-greeting",
    "--no-auto-key-retrieve",
    "--no-auto-key-locate",
    "--no-auto-check-trustdb",
)
# For a gpg that holds no secret and fetches nothing: no agent, no dirmngr, so
# no daemon outlives the call and no socket is made.
NO_DAEMON_OPTIONS = ("--no-autostart",)
# libgpg-error codes (the low 16 bits of an ERROR status line's code).
_BAD_PASSPHRASE = 11
_BAD_PIN = 87
_CANCELED = 99
_CARD_REMOVED = 108
_CARD_NOT_PRESENT = 112
_NO_SCDAEMON = 119
_NO_PIN_ENTRY = 85
_ERROR_STATUS = re.compile(r"^\[GNUPG:\] (?:ERROR|FAILURE) \S+ ([0-9]+)", re.MULTILINE)
# gpg's own reason for a failure none of the above names; read only when gpg
# speaks English (else python-gnupg's summary stands in).
_DECRYPTION_REASON = re.compile(r"^gpg: public key decryption failed: (.{1,200})$", re.MULTILINE)


class GpgError(AgeError):
    """gpg could not do what was asked."""


class GpgSetupError(GpgError):
    """gpg could not unlock the reviewer's key here: a problem of this machine, not of
    the file (so a bundle stops, rather than marking every tip damaged)."""


class GpgMissingError(GpgSetupError):
    """gpg is not installed (on Debian: apt install gnupg)."""


class GpgWrongPassphraseError(GpgSetupError):
    """Wrong passphrase or PIN for the OpenPGP key (gpg refused to unlock it)."""


class GpgCardError(GpgSetupError):
    """The OpenPGP smartcard holding the key is not present: insert it and try again."""


class GpgCanceledError(GpgSetupError):
    """The passphrase or PIN entry was cancelled."""


class GpgPinentryError(GpgSetupError):
    """gpg could not ask for the passphrase or PIN: no pinentry program works here."""


def open_gpg(
    home: Path | None,
    *,
    binary: str = "gpg",
    env: Mapping[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> gnupg.GPG:
    """A python-gnupg handle on ``home`` (None: the user's own gpg home)."""
    try:
        return gnupg.GPG(
            gpgbinary=binary,
            gnupghome=None if home is None else str(home),
            options=[*BASE_OPTIONS, *options],
            env=None if env is None else dict(env),
        )
    except OSError:
        raise GpgMissingError(
            f"{binary} cannot be run: is GnuPG installed? On Debian: apt install gnupg."
        ) from None
    except ValueError as exc:  # python-gnupg: the home is not a folder
        raise GpgError(f"gpg cannot use its home folder: {exc}") from None


def quiet_environment(home: Path) -> dict[str, str]:
    """An environment for a gpg the relay starts: its HOME is the gpg home itself.

    Then nothing gpg or an agent might write (sockets, a default ~/.gnupg)
    can land outside the folder the relay gave it.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GNUPGHOME": str(home),
        "LC_ALL": "C.UTF-8",
    }


def controlling_terminal() -> str | None:
    """The path of our controlling terminal (/dev/pts/N), or None (Linux /proc)."""
    for descriptor in (0, 1, 2):  # under age these are pipes and /dev/null
        with contextlib.suppress(OSError):
            return os.ttyname(descriptor)
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        device = int(fields[4])  # tty_nr, after state, ppid, pgrp and session
    except (OSError, IndexError, ValueError):
        return None
    if device == 0:
        return None
    # "/dev/tty" itself means nothing to gpg-agent, which has no terminal: it
    # needs the device's own name.
    candidates = sorted(Path("/dev/pts").glob("[0-9]*")) + sorted(Path("/dev").glob("tty*"))
    for candidate in candidates:
        with contextlib.suppress(OSError):
            status = candidate.stat()
            if stat.S_ISCHR(status.st_mode) and status.st_rdev == device:
                return str(candidate)
    return None


def point_pinentry_at_terminal() -> None:
    """Set GPG_TTY, if unset, to the reviewer's terminal.

    gpg tells its agent where to ask from GPG_TTY (else from its own stdin,
    which python-gnupg makes a pipe), so without this a curses or tty pinentry
    could not ask at all, on a console-only offline machine as under age.
    """
    if os.environ.get("GPG_TTY"):
        return
    terminal = controlling_terminal()
    if terminal is not None:
        os.environ["GPG_TTY"] = terminal


def error_codes(status_text: str) -> set[int]:
    """The libgpg-error codes in gpg's ERROR and FAILURE status lines."""
    return {int(code) & 0xFFFF for code in _ERROR_STATUS.findall(status_text)}


def decryption_reason(status_text: str) -> str | None:
    """What gpg said when it could not decrypt ("Not supported"), if it said it in English."""
    found = _DECRYPTION_REASON.search(status_text)
    return found.group(1).strip() if found else None


def raise_for_unlock_failure(status_text: str, key: str) -> None:
    """Raise the error a person can act on if gpg could not unlock ``key``."""
    codes = error_codes(status_text)
    if "SC_OP_FAILURE 2" in status_text or _BAD_PIN in codes:
        raise GpgWrongPassphraseError(
            f"Wrong PIN for the smartcard holding OpenPGP key {key}. "
            "Careful: a card locks itself after three wrong PINs."
        )
    if "BAD_PASSPHRASE" in status_text or _BAD_PASSPHRASE in codes:
        raise GpgWrongPassphraseError(f"Wrong passphrase for OpenPGP key {key}.")
    if codes & {_CARD_NOT_PRESENT, _CARD_REMOVED, _NO_SCDAEMON}:
        raise GpgCardError(
            f"The smartcard holding OpenPGP key {key} is not present (or no card "
            "reader works): insert the card, check `gpg --card-status`, and try again."
        )
    if "SC_OP_FAILURE 1" in status_text or _CANCELED in codes:
        raise GpgCanceledError(f"The PIN or passphrase entry for OpenPGP key {key} was cancelled.")
    if _NO_PIN_ENTRY in codes:
        raise GpgPinentryError(
            f"gpg could not ask for the passphrase of OpenPGP key {key}: no pinentry "
            "program works here (install pinentry-curses, or set GPG_TTY=$(tty))."
        )


__all__ = [
    "FINGERPRINT",
    "KEY_ID",
    "NO_DAEMON_OPTIONS",
    "GpgCanceledError",
    "GpgCardError",
    "GpgError",
    "GpgMissingError",
    "GpgPinentryError",
    "GpgSetupError",
    "GpgWrongPassphraseError",
    "controlling_terminal",
    "decryption_reason",
    "error_codes",
    "open_gpg",
    "point_pinentry_at_terminal",
    "quiet_environment",
    "raise_for_unlock_failure",
]
