"""OpenPGP recipients: wrap an age file key for a reviewer's OpenPGP key with gpg.

The stanza (docs/formats.md)::

    -> tiprelay-openpgp <FINGERPRINT>
    <base64 of a binary OpenPGP message of the 16-byte file key>

Stock age skips the stanza, as the age spec requires of unknown types, so the
age reviewers of the same file still open it with stock ``age``.

gpg encrypts in a home of its own, :class:`PublicKeyring`, made from public
keys only: on the relay it lives inside the data folder and is made afresh at
every start; for an offline reply it is a throwaway folder. gpg sees the file
key and nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import primitives
from .format import Stanza
from .openpgp_gpg import NO_DAEMON_OPTIONS, GpgError, open_gpg, quiet_environment
from .openpgp_keys import OpenPGPPublicKey
from .openpgp_packets import read_session_key_recipient

STANZA_TYPE = "tiprelay-openpgp"
# Encryption must not compress (16 random bytes gain nothing) and must name its
# recipient, which the relay's upload check reads (never --throw-keyids).
_ENCRYPT_OPTIONS = ["--compress-algo", "none", "--no-throw-keyids"]
# Nothing writes to the home once it is made: readers need no lock.
_READ_ONLY_OPTIONS = (*NO_DAEMON_OPTIONS, "--lock-never", "--no-random-seed-file")


class PublicKeyring:
    """A gpg home holding the reviewers' public keys, and nothing else."""

    def __init__(self, home: Path, keys: Sequence[OpenPGPPublicKey]) -> None:
        """Make ``home`` afresh (removing what was there) and import ``keys`` into it."""
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(mode=0o700, parents=True)
        self.home = home
        environment = quiet_environment(home)
        importer = open_gpg(home, env=environment, options=NO_DAEMON_OPTIONS)
        for key in keys:
            result = importer.import_keys(key.armored)
            if not result.count or result.sec_imported:
                raise GpgError(
                    f"gpg could not import OpenPGP key {key.fingerprint} into {home}."
                )
        secret_folder = home / "private-keys-v1.d"
        if secret_folder.exists() and any(secret_folder.iterdir()):
            raise GpgError(f"A secret key reached the relay's gpg home {home}: refusing.")
        self._gpg = open_gpg(home, env=environment, options=_READ_ONLY_OPTIONS)
        self._keys = {key.fingerprint: key for key in keys}
        # gpg dates the literal packet around each file key with its clock. Stop
        # that clock when the home is made (the relay's start or reload): every
        # tip sealed until the next reload carries that same moment, so none
        # carries its own time (submission.json has no time finer than the day).
        # gpg accepts these keys at that moment, as they were checked then;
        # expiry is checked below against the real clock.
        self._clock = time.strftime("%Y%m%dT%H%M%S!", time.gmtime())

    @classmethod
    def temporary(cls, keys: Sequence[OpenPGPPublicKey]) -> PublicKeyring:
        """A keyring in a new temporary folder; call close() to remove it."""
        folder = Path(tempfile.mkdtemp(prefix="tiprelay-gpg-"))
        return cls(folder / "home", keys)

    def _usable_key(self, fingerprint: str) -> OpenPGPPublicKey:
        """The key ``fingerprint`` of this home; GpgError if it is not here or has expired."""
        key = self._keys.get(fingerprint)
        if key is None:
            raise GpgError(f"OpenPGP key {fingerprint} is not in the relay's gpg home.")
        if key.expires is not None and key.expires <= time.time():
            raise GpgError(f"OpenPGP key {fingerprint} has expired.")
        return key

    def encrypt_file_key(self, fingerprint: str, file_key: bytes) -> bytes:
        """A binary OpenPGP message of ``file_key`` to the key ``fingerprint``."""
        key = self._usable_key(fingerprint)
        result = self._gpg.encrypt(
            file_key,
            [fingerprint],
            armor=False,
            always_trust=True,
            extra_args=[*_ENCRYPT_OPTIONS, "--faked-system-time", self._clock],
        )
        message = bytes(result.data)
        if not result.ok or not message:
            raise GpgError(
                f"gpg could not encrypt to OpenPGP key {fingerprint} "
                f"({result.status or 'no status'}); has it expired?"
            )
        # Our own reading of what gpg wrote: the relay accepts from browsers only
        # what it would write itself.
        recipient = read_session_key_recipient(message)
        if recipient.key_id not in key.encryption_key_ids:
            raise GpgError(
                f"gpg encrypted to key id {recipient.key_id}, which is not an encryption "
                f"key of {fingerprint}."
            )
        return message

    def encrypt_text(self, fingerprints: Sequence[str], text: str) -> str:
        """``text`` (UTF-8) as one ASCII-armored OpenPGP message to every key in ``fingerprints``.

        Not compressed, so that the message's length depends only on the text's
        length and the keys (the notification digest relies on it), never on
        what the text says.
        """
        if not fingerprints:
            raise GpgError("An OpenPGP message needs at least one recipient.")
        for fingerprint in fingerprints:
            self._usable_key(fingerprint)
        result = self._gpg.encrypt(
            text.encode("utf-8"),
            list(fingerprints),
            armor=True,
            always_trust=True,
            extra_args=[*_ENCRYPT_OPTIONS, "--faked-system-time", self._clock],
        )
        message = bytes(result.data)
        if not result.ok or not message.startswith(b"-----BEGIN PGP MESSAGE-----"):
            raise GpgError(
                f"gpg could not encrypt to OpenPGP key(s) {', '.join(fingerprints)} "
                f"({result.status or 'no status'})."
            )
        return message.decode("ascii")

    def close(self) -> None:
        """Remove the home (a temporary keyring's folder too)."""
        parent = self.home.parent
        shutil.rmtree(self.home, ignore_errors=True)
        if parent.name.startswith("tiprelay-gpg-"):
            shutil.rmtree(parent, ignore_errors=True)


class OpenPGPRecipient:
    """A reviewer's OpenPGP key, wrapped to through a :class:`PublicKeyring`."""

    def __init__(self, key: OpenPGPPublicKey, keyring: PublicKeyring) -> None:
        self.key = key
        self._keyring = keyring

    def __str__(self) -> str:
        return str(self.key)

    def __repr__(self) -> str:
        return f"OpenPGPRecipient({self.key.fingerprint})"

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One ``tiprelay-openpgp`` stanza."""
        if len(file_key) != primitives.FILE_KEY_SIZE:
            raise ValueError("an age file key is 16 bytes")
        body = self._keyring.encrypt_file_key(self.key.fingerprint, file_key)
        return [Stanza(STANZA_TYPE, (self.key.fingerprint,), body)]


__all__ = ["STANZA_TYPE", "OpenPGPRecipient", "PublicKeyring"]
