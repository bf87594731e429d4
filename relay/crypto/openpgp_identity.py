"""The OpenPGP identity: a reviewer's own gpg opens ``tiprelay-openpgp`` stanzas.

Offline code only (the server never imports it: import-linter). gpg runs in the
reviewer's usual environment, so their gpg-agent, pinentry and smartcard work
as they are set up; gpg is handed the stanza's OpenPGP message and gives back
the 16-byte file key. It never sees the payload: the file is decrypted by
tiprelay with that file key, exactly as for an age identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import primitives
from .errors import HeaderError
from .format import Stanza
from .openpgp_gpg import (
    FINGERPRINT,
    decryption_reason,
    open_gpg,
    point_pinentry_at_terminal,
    raise_for_unlock_failure,
)
from .openpgp_packets import MAX_MESSAGE_BYTES, read_session_key_recipient
from .openpgp_recipient import STANZA_TYPE

# The stanza's message comes from whoever sealed the file: anyone can encrypt
# to a public key. gpg may give back at most a few bytes (a compressed packet
# could expand to gigabytes in python-gnupg's memory), writes no file, checks
# no signature and imports no key, whatever the reviewer's gpg.conf says.
_DECRYPT_OPTIONS = [
    "--no-verbose",
    "--max-output",
    str(primitives.FILE_KEY_SIZE * 4),
    "--no-use-embedded-filename",
    "--skip-verify",
    "--no-auto-key-import",
]


def stanza_fingerprint(stanza: Stanza) -> str:
    """The fingerprint a ``tiprelay-openpgp`` stanza names; HeaderError if malformed."""
    if len(stanza.args) != 1 or not FINGERPRINT.fullmatch(stanza.args[0]):
        raise HeaderError(
            "A tiprelay-openpgp stanza must have exactly one argument: a 40-digit "
            "upper-case OpenPGP fingerprint."
        )
    if len(stanza.body) > MAX_MESSAGE_BYTES:
        raise HeaderError("A tiprelay-openpgp stanza has an oversized body.")
    read_session_key_recipient(stanza.body)
    return stanza.args[0]


class GpgIdentity:
    """Every secret key the reviewer's gpg holds (on disk or on a smartcard)."""

    def __init__(self, home: Path | None = None, *, binary: str = "gpg") -> None:
        """``home``: a gpg home folder; None for the reviewer's own (GNUPGHOME or ~/.gnupg)."""
        self.home = home
        point_pinentry_at_terminal()
        self._gpg = open_gpg(home, binary=binary)
        listing = self._gpg.list_keys(secret=True)
        # Primary fingerprints: the stanza names the key, not its subkey. A key
        # whose secret parts are on a card is listed too (as a stub).
        self.fingerprints = frozenset(
            key["fingerprint"] for key in listing if FINGERPRINT.fullmatch(key["fingerprint"])
        )

    def __repr__(self) -> str:
        return f"GpgIdentity(home={self.home}, keys={sorted(self.fingerprints)})"

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key if this stanza is for one of our keys, None if not; raises otherwise."""
        if stanza.type != STANZA_TYPE:
            return None
        fingerprint = stanza_fingerprint(stanza)
        if fingerprint not in self.fingerprints:
            return None
        result = self._gpg.decrypt(stanza.body, extra_args=_DECRYPT_OPTIONS)
        status_text = result.stderr or ""
        if result.ok:
            file_key = bytes(result.data)
            if len(file_key) != primitives.FILE_KEY_SIZE:
                raise HeaderError(
                    f"The OpenPGP stanza for {fingerprint} does not hold a 16-byte file key."
                )
            return file_key
        raise_for_unlock_failure(status_text, fingerprint)  # this machine's problems
        if "NO_SECKEY" in status_text:
            return None  # we hold the primary key's secret, not that subkey's
        # Anything else is this file's stanza: damaged, or crafted (anyone can
        # encrypt to a public key). The file is refused; a bundle goes on.
        raise HeaderError(
            f"gpg could not open the OpenPGP stanza for key {fingerprint}: "
            f"{decryption_reason(status_text) or result.status or 'no reason given'}."
        )

    def explain_no_match(self, stanzas: Sequence[Stanza]) -> str:
        """Why none of ``stanzas`` is ours, for the error a reviewer sees."""
        named = [s.args[0] for s in stanzas if s.type == STANZA_TYPE and s.args]
        where = f"gpg home {self.home}" if self.home else "your gpg"
        if not named:
            return (
                "This file is encrypted to no OpenPGP key (only to age identities): "
                "decrypt it with -i IDENTITY_FILE instead of --gpg."
            )
        return (
            f"No secret key in {where} matches the OpenPGP key(s) this file is encrypted "
            f"to: {', '.join(named)}. (Keys with a secret part here: "
            f"{', '.join(sorted(self.fingerprints)) or 'none'}.)"
        )


__all__ = ["GpgIdentity", "stanza_fingerprint"]
