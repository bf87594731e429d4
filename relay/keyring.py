"""The reviewers' public keys: one ``keys/<name>.toml`` per reviewer.

::

    name = "alice"
    age_recipient = "age1..."                 # every submission is encrypted to it
    api_key = "ed25519:<base64 of 32 bytes>"  # optional; signs reviewer API requests

A reviewer who holds an OpenPGP key (often on a smartcard) has, instead of
``age_recipient``, ``openpgp_fingerprint = "<40 hex digits>"``, and their
ASCII-armored public key beside it in ``keys/<FINGERPRINT>.asc``. Each such
key is checked with gpg (relay.crypto.openpgp_keys): secret, revoked,
without an encryption subkey or of a weak algorithm, it is refused by name.

An expired key is no reason to stop the tip line: its reviewer stays (their
API key still works) but is left out of what tips are sealed to
(:meth:`Keyring.usable_at`, checked against the clock at every tip, so a key
that expires while the relay runs drops out at that moment). Only when no
reviewer is left to seal to does the relay refuse to start, or to seal. The
server logs a warning from ``EXPIRY_WARNING_DAYS`` before a key expires
(relay.server.app, at start, at reload and daily).

Beside them, ``keys/conversation-salt`` is the relay's public conversation
salt (see relay.conversation_salt); it is not a reviewer.

The relay refuses to load the folder, naming the file, when it holds no
reviewer, a malformed or unexpected file, two reviewers sharing a key, or
anything anywhere in it that looks like private key material: a seized server
must yield public keys only (the README's promise "The server cannot
decrypt"). README files and hidden
files are not reviewers, but they are checked for private material too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from relay.conversation_salt import SALT_FILE_NAME
from relay.crypto.errors import KeyFormatError
from relay.crypto.openpgp_gpg import FINGERPRINT, GpgError
from relay.crypto.openpgp_keys import (
    OpenPGPKeyError,
    OpenPGPPublicKey,
    minimal_public_key,
)
from relay.crypto.openpgp_recipient import OpenPGPRecipient, PublicKeyring
from relay.crypto.recipients import Recipient, X25519Recipient
from relay.errors import KeyringError
from relay.fingerprint import recipient_set_fingerprint

REVIEWER_NAME = re.compile(r"[a-z0-9_-]{1,64}")
API_KEY_PREFIX = "ed25519:"
API_KEY_SIZE = 32
REVIEWER_FILE_SUFFIX = ".toml"
OPENPGP_KEY_SUFFIX = ".asc"
OPENPGP_PREFIX = "openpgp:"
# keys/ holds a few small text files; these bound the cost of a bad folder.
MAX_FILE_BYTES = 64 * 1024
MAX_FILES = 1000
_FIELDS = frozenset({"name", "age_recipient", "openpgp_fingerprint", "api_key"})
EXPIRY_WARNING_DAYS = 14
"""The operator is warned this many days before a reviewer's OpenPGP key expires."""
_DAY_SECONDS = 86400

# (what it looks like, pattern), searched case-insensitively in every file's bytes.
_PRIVATE_MATERIAL: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (what, re.compile(pattern, re.IGNORECASE))
    for what, pattern in (
        ("an age secret key (AGE-SECRET-KEY-...)", rb"AGE-SECRET-KEY-"),
        ("an age plugin identity (AGE-PLUGIN-...)", rb"AGE-PLUGIN-[A-Z0-9]+-1"),
        ("an OpenPGP private key", rb"BEGIN PGP PRIVATE KEY BLOCK"),
        ("a PEM or OpenSSH private key", rb"PRIVATE KEY-----"),
        ("a PuTTY private key", rb"PuTTY-User-Key-File|Private-Lines:"),
        ("an Ed25519 secret key (a reviewer API signing key)", rb"ED25519-SECRET"),
        ("a GnuPG agent private key", rb"\((protected-|shadowed-)?private-key"),
        (
            "an age-encrypted file (perhaps a passphrase-protected identity)",
            rb"BEGIN AGE ENCRYPTED FILE|age-encryption\.org/v1\n->",
        ),
        (
            "a bech32-encoded secret (like an age identity)",
            rb"[a-z0-9-]*secret[a-z0-9-]*1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{20,}",
        ),
    )
)


@dataclass(frozen=True)
class Reviewer:
    """One reviewer: who can decrypt (an age recipient or an OpenPGP key, exactly one of
    them) and who may use the API (api_key)."""

    name: str
    age_recipient: X25519Recipient | None
    api_key: bytes | None
    openpgp_key: OpenPGPPublicKey | None = None

    def __post_init__(self) -> None:
        if (self.age_recipient is None) == (self.openpgp_key is None):
            raise ValueError("a reviewer has exactly one of an age recipient and an OpenPGP key")

    @property
    def expires(self) -> int | None:
        """When this reviewer's key can no longer be encrypted to (None: never; an
        age recipient never expires)."""
        return None if self.openpgp_key is None else self.openpgp_key.expires

    def can_encrypt_at(self, now: float) -> bool:
        """Whether tips may be sealed to this reviewer at ``now``."""
        return self.expires is None or self.expires > now

    @property
    def recipient(self) -> str:
        """What this reviewer is encrypted to, as the recipient set lists it:
        ``age1...`` or ``openpgp:<FINGERPRINT>``."""
        if self.openpgp_key is not None:
            return OPENPGP_PREFIX + self.openpgp_key.fingerprint
        return str(self.age_recipient)


@dataclass(frozen=True)
class Keyring:
    """The reviewers a relay encrypts to, sorted by name; never empty."""

    reviewers: tuple[Reviewer, ...]

    @property
    def recipients(self) -> list[str]:
        """The recipient set: every reviewer's ``age1...`` or ``openpgp:<FINGERPRINT>``."""
        return [reviewer.recipient for reviewer in self.reviewers]

    @property
    def age_recipients(self) -> list[X25519Recipient]:
        """The age reviewers' recipients."""
        return [r.age_recipient for r in self.reviewers if r.age_recipient is not None]

    @property
    def openpgp_keys(self) -> list[OpenPGPPublicKey]:
        """The OpenPGP reviewers' checked public keys."""
        return [r.openpgp_key for r in self.reviewers if r.openpgp_key is not None]

    def openpgp_encryption_key_ids(self) -> dict[str, frozenset[str]]:
        """For each OpenPGP reviewer's fingerprint, the key ids a message to them may name."""
        return {key.fingerprint: key.encryption_key_ids for key in self.openpgp_keys}

    def recipients_document(self) -> dict[str, object]:
        """What a browser needs to encrypt to this keyring (``GET /api/v1/recipients``).

        ``recipients`` is the set, ``fingerprint`` its recipient-set
        fingerprint (relay.fingerprint), and ``openpgp_keys`` maps each OpenPGP
        reviewer's fingerprint to their armored public key (empty without any).
        """
        recipients = self.recipients
        return {
            "recipients": recipients,
            "fingerprint": recipient_set_fingerprint(recipients),
            "openpgp_keys": {key.fingerprint: key.armored for key in self.openpgp_keys},
        }

    def usable_at(self, now: float) -> Keyring | None:
        """The reviewers tips can be sealed to at ``now`` (those whose OpenPGP key has
        not expired), or None when there is none: the server's sealing, the
        browser's recipients and the upload check all use this one set."""
        usable = tuple(r for r in self.reviewers if r.can_encrypt_at(now))
        if len(usable) == len(self.reviewers):
            return self
        return Keyring(reviewers=usable) if usable else None

    def expiry_notices(self, now: float) -> list[ExpiryNotice]:
        """The reviewers whose key expires within EXPIRY_WARNING_DAYS, or has expired."""
        notices = []
        for reviewer in self.reviewers:
            expires = reviewer.expires
            if expires is not None and expires - now < EXPIRY_WARNING_DAYS * _DAY_SECONDS:
                assert reviewer.openpgp_key is not None
                notices.append(ExpiryNotice(reviewer.name, reviewer.openpgp_key.fingerprint,
                                            expires, now))
        return notices

    def reviewer_for_api_key_id(self, key_id: str) -> Reviewer | None:
        """The reviewer named ``key_id`` if they have an API key; otherwise None."""
        for reviewer in self.reviewers:
            if reviewer.name == key_id and reviewer.api_key is not None:
                return reviewer
        return None


@dataclass(frozen=True)
class ExpiryNotice:
    """A reviewer's OpenPGP key that expires soon, or has expired, seen at ``now``."""

    reviewer: str
    fingerprint: str
    expires: int
    now: float

    @property
    def expired(self) -> bool:
        return self.expires <= self.now

    @property
    def days_left(self) -> int:
        """Whole days left before it expires (0 on its last day; 0 once expired)."""
        return max(0, int((self.expires - self.now) // _DAY_SECONDS))

    @property
    def day(self) -> str:
        """The UTC day it expires, or expired, on."""
        return time.strftime("%Y-%m-%d", time.gmtime(self.expires))


def _refuse_private_material(path: Path, content: bytes) -> None:
    for what, pattern in _PRIVATE_MATERIAL:
        if pattern.search(content):
            raise KeyringError(
                f"{path} looks like {what}. The keys folder must hold public keys only: "
                "move this file off the server (if it is a real secret key, treat it as "
                "exposed and replace it)."
            )
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyringError(
            f"{path} is not a text file (it could be a binary secret keyring). "
            "The keys folder holds only <name>.toml text files: remove it."
        ) from None
    if b"\x00" in content:
        raise KeyringError(f"{path} contains NUL bytes; the keys folder holds only text files.")


def _files_under(keys_dir: Path) -> list[Path]:
    found: list[Path] = []
    # followlinks: mounted configurations (e.g. Kubernetes) link into hidden folders.
    for folder, _, names in os.walk(keys_dir, followlinks=True):
        for name in names:
            found.append(Path(folder) / name)
            if len(found) > MAX_FILES:
                raise KeyringError(f"{keys_dir} holds more than {MAX_FILES} files; refusing.")
    return found


def _check_all_files(keys_dir: Path) -> dict[Path, bytes]:
    """Every file's content, after refusing private material anywhere in the folder."""
    contents: dict[Path, bytes] = {}
    for path in _files_under(keys_dir):
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise KeyringError(
                    f"{path} is {size} bytes; reviewer key files are tiny. Remove it."
                )
            contents[path] = path.read_bytes()
        except OSError as exc:
            raise KeyringError(f"{path} cannot be read: {exc.strerror}.") from None
        _refuse_private_material(path, contents[path])
    return contents


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name.upper().startswith("README")


def _decode_api_key(path: Path, value: object) -> bytes:
    if not isinstance(value, str) or not value.startswith(API_KEY_PREFIX):
        raise KeyringError(f'{path}: api_key must look like "ed25519:<base64>".')
    try:
        key = base64.b64decode(value[len(API_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{path}: api_key is not valid base64.") from None
    if len(key) != API_KEY_SIZE:
        raise KeyringError(
            f"{path}: api_key must be a {API_KEY_SIZE}-byte Ed25519 public key, "
            f"this is {len(key)} bytes."
        )
    return key


def _openpgp_key_of(
    path: Path, value: object, keys: dict[str, tuple[Path, OpenPGPPublicKey]]
) -> OpenPGPPublicKey:
    if not isinstance(value, str) or not FINGERPRINT.fullmatch(value):
        raise KeyringError(
            f"{path}: openpgp_fingerprint must be the key's 40-digit fingerprint in upper "
            "case, without spaces (gpg --with-colons --fingerprint shows it)."
        )
    if value not in keys:
        raise KeyringError(
            f"{path}: the OpenPGP public key {value} is missing: export it with "
            f"`gpg --export --armor {value} > {path.parent / (value + OPENPGP_KEY_SUFFIX)}` "
            "(or use tiprelay reviewer add --openpgp-key FILE)."
        )
    return keys[value][1]


def _parse_reviewer(
    path: Path, content: bytes, openpgp_keys: dict[str, tuple[Path, OpenPGPPublicKey]]
) -> Reviewer:
    try:
        table = tomllib.loads(content.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KeyringError(f"{path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise KeyringError(
            f"{path}: unknown key(s) {', '.join(unknown)}; "
            "a reviewer file has only name, age_recipient or openpgp_fingerprint, and api_key."
        )
    name = table.get("name")
    if not isinstance(name, str) or not REVIEWER_NAME.fullmatch(name):
        raise KeyringError(f"{path}: name must be 1-64 characters of a-z, 0-9, _ and -.")
    if path.name != name + REVIEWER_FILE_SUFFIX:
        raise KeyringError(
            f'{path}: name "{name}" does not match the file name; '
            f"the file of reviewer {name} must be named {name}{REVIEWER_FILE_SUFFIX}."
        )
    api_key = _decode_api_key(path, table["api_key"]) if "api_key" in table else None
    if "age_recipient" in table and "openpgp_fingerprint" in table:
        raise KeyringError(
            f"{path}: a reviewer has either age_recipient or openpgp_fingerprint, not both; "
            "make two reviewers if one person holds both kinds of key."
        )
    if "openpgp_fingerprint" in table:
        key = _openpgp_key_of(path, table["openpgp_fingerprint"], openpgp_keys)
        return Reviewer(name=name, age_recipient=None, api_key=api_key, openpgp_key=key)
    recipient_text = table.get("age_recipient")
    if not isinstance(recipient_text, str):
        raise KeyringError(
            f'{path}: age_recipient ("age1...") or openpgp_fingerprint is missing.'
        )
    try:
        recipient = X25519Recipient.parse(recipient_text)
    except KeyFormatError as exc:
        raise KeyringError(f"{path}: age_recipient is not an age recipient: {exc}") from None
    return Reviewer(name=name, age_recipient=recipient, api_key=api_key)


def openpgp_key_file_of(reviewer_file: Path) -> Path | None:
    """The ``<FINGERPRINT>.asc`` a reviewer file names, if it names one (unchecked)."""
    try:
        with reviewer_file.open("rb") as handle:
            table = tomllib.loads(handle.read(MAX_FILE_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    fingerprint = table.get("openpgp_fingerprint")
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        return None
    return reviewer_file.parent / (fingerprint + OPENPGP_KEY_SUFFIX)


def _refuse_shared_keys(reviewers: list[tuple[Path, Reviewer]]) -> None:
    seen: dict[object, Path] = {}
    for path, reviewer in reviewers:
        for label, key in (
            ("name", ("name", reviewer.name)),
            ("age recipient", ("age", reviewer.age_recipient)),
            ("OpenPGP key", ("openpgp", reviewer.openpgp_key and reviewer.openpgp_key.fingerprint)),
            ("api_key", ("api", reviewer.api_key)),
        ):
            if key[1] is None:
                continue
            if key in seen:
                raise KeyringError(
                    f"{path} and {seen[key]} have the same {label}; "
                    "each reviewer needs their own keys."
                )
            seen[key] = path


def _load_openpgp_key(path: Path, content: bytes, scratch: Path | None) -> OpenPGPPublicKey:
    # What the relay publishes is the key re-exported minimal (no third-party
    # signatures, nothing around the armor), however the file was written.
    # An expired key is loaded (its reviewer keeps their API key), and sealed
    # to no more: see Keyring.usable_at.
    try:
        key = minimal_public_key(content, str(path), scratch=scratch, expired_ok=True)
    except OpenPGPKeyError as exc:
        raise KeyringError(str(exc)) from None
    except GpgError as exc:
        raise KeyringError(f"{path} could not be checked: {exc}") from None
    if path.name != key.fingerprint + OPENPGP_KEY_SUFFIX:
        raise KeyringError(
            f"{path} holds OpenPGP key {key.fingerprint}; name the file "
            f"{key.fingerprint}{OPENPGP_KEY_SUFFIX}."
        )
    return key


def _load_reviewers(keys_dir: Path, scratch: Path | None = None) -> list[Reviewer]:
    if not keys_dir.is_dir():
        raise KeyringError(f"The keys folder {keys_dir} does not exist or is not a folder.")
    contents = _check_all_files(keys_dir)
    reviewer_files: list[Path] = []
    openpgp_keys: dict[str, tuple[Path, OpenPGPPublicKey]] = {}
    for entry in sorted(keys_dir.iterdir()):
        if _is_ignored(entry.name) or entry.name == SALT_FILE_NAME:
            continue  # the salt is read by relay.conversation_salt
        if entry.is_dir():
            raise KeyringError(f"{entry} is a folder; the keys folder holds only files.")
        if entry.name.endswith(OPENPGP_KEY_SUFFIX):
            key = _load_openpgp_key(entry, contents[entry], scratch)
            openpgp_keys[key.fingerprint] = (entry, key)
            continue
        if not entry.name.endswith(REVIEWER_FILE_SUFFIX):
            raise KeyringError(
                f"{entry} is not a reviewer file; the keys folder holds <name>.toml "
                "files, <FINGERPRINT>.asc OpenPGP public keys, READMEs and "
                "conversation-salt. Remove or rename it."
            )
        reviewer_files.append(entry)
    parsed = [(p, _parse_reviewer(p, contents[p], openpgp_keys)) for p in reviewer_files]
    _refuse_shared_keys(parsed)
    used = {r.openpgp_key.fingerprint for _, r in parsed if r.openpgp_key is not None}
    for fingerprint, (path, _) in sorted(openpgp_keys.items()):
        if fingerprint not in used:
            raise KeyringError(
                f"{path} is no reviewer's key: no <name>.toml has openpgp_fingerprint = "
                f'"{fingerprint}". Add the reviewer or remove the file.'
            )
    return [reviewer for _, reviewer in parsed]


def load_keyring(keys_dir: Path, *, scratch: Path | None = None) -> Keyring:
    """Load and check every reviewer in ``keys_dir``; KeyringError names what is wrong.

    gpg checks OpenPGP keys in throwaway homes made under ``scratch`` (the
    system's temporary folder if None; the relay passes its data folder).
    """
    reviewers = _load_reviewers(keys_dir, scratch)
    if not reviewers:
        raise KeyringError(
            f"No reviewer in {keys_dir}: add one with `tiprelay reviewer add`. "
            "Without a reviewer nobody could read the submissions."
        )
    keyring = Keyring(reviewers=tuple(sorted(reviewers, key=lambda r: r.name)))
    if keyring.usable_at(time.time()) is None:
        expired = [
            f"{keys_dir / (r.openpgp_key.fingerprint + OPENPGP_KEY_SUFFIX)}: OpenPGP key "
            f"{r.openpgp_key.fingerprint} of reviewer {r.name} has expired."
            for r in keyring.reviewers
            if r.openpgp_key is not None
        ]
        raise KeyringError(
            " ".join(expired) + " No reviewer is left to encrypt tips to. A reviewer can "
            "extend their key (gpg --quick-set-expire FINGERPRINT 1y, and the same with "
            "'*' for its subkeys), export it again and replace the .asc file."
        )
    return keyring


def write_reviewer_file(
    keys_dir: Path,
    name: str,
    age_recipient: X25519Recipient | str | None,
    api_key: bytes | None,
    *,
    openpgp_public_key: bytes | None = None,
) -> Path:
    """Write ``keys_dir/<name>.toml`` (and ``<FINGERPRINT>.asc`` for an OpenPGP reviewer).

    Exactly one of ``age_recipient`` and ``openpgp_public_key`` (an armored
    public key, checked with gpg and stripped of third-party signatures before
    it is written). Refuses to overwrite or to share another reviewer's keys.
    """
    if not REVIEWER_NAME.fullmatch(name):
        raise KeyringError("A reviewer name is 1-64 characters of a-z, 0-9, _ and -.")
    if (age_recipient is None) == (openpgp_public_key is None):
        raise KeyringError("A reviewer has either an age recipient or an OpenPGP key.")
    recipient: X25519Recipient | None = None
    openpgp_key: OpenPGPPublicKey | None = None
    if age_recipient is not None:
        try:
            recipient = (
                age_recipient
                if isinstance(age_recipient, X25519Recipient)
                else X25519Recipient.parse(age_recipient)
            )
        except KeyFormatError as exc:
            raise KeyringError(f"Not an age recipient: {exc}") from None
    if openpgp_public_key is not None:
        try:
            openpgp_key = minimal_public_key(openpgp_public_key, "The OpenPGP key")
        except OpenPGPKeyError as exc:
            raise KeyringError(str(exc)) from None
        except GpgError as exc:
            raise KeyringError(f"The OpenPGP key could not be checked: {exc}") from None
    if api_key is not None and len(api_key) != API_KEY_SIZE:
        raise KeyringError(f"An API key is a {API_KEY_SIZE}-byte Ed25519 public key.")
    keys_dir.mkdir(parents=True, exist_ok=True)
    target = keys_dir / (name + REVIEWER_FILE_SUFFIX)
    if target.exists():
        raise KeyringError(f"{target} already exists; remove it first to replace this reviewer.")
    existing = _load_reviewers(keys_dir)
    new = Reviewer(name=name, age_recipient=recipient, api_key=api_key, openpgp_key=openpgp_key)
    others = [(keys_dir / (r.name + REVIEWER_FILE_SUFFIX), r) for r in existing]
    _refuse_shared_keys([*others, (target, new)])
    lines = [
        f"# tiprelay reviewer {name}: public keys only. Never put a secret key in this folder.",
        f'name = "{name}"',
    ]
    if openpgp_key is not None:
        lines.append(f'openpgp_fingerprint = "{openpgp_key.fingerprint}"')
        key_file = keys_dir / (openpgp_key.fingerprint + OPENPGP_KEY_SUFFIX)
        if key_file.exists():
            raise KeyringError(f"{key_file} already exists; remove it first.")
    else:
        lines.append(f'age_recipient = "{recipient}"')
    if api_key is not None:
        lines.append(f'api_key = "{API_KEY_PREFIX}{base64.b64encode(api_key).decode()}"')
    if openpgp_key is None:
        _write_new_file(target, ("\n".join(lines) + "\n").encode())
        return target
    # The key first: a reviewer file naming a missing key would stop the relay;
    # and no key without its reviewer file is left behind, which would too.
    _write_new_file(key_file, openpgp_key.armored.encode("ascii"))
    try:
        _write_new_file(target, ("\n".join(lines) + "\n").encode())
    except BaseException:
        key_file.unlink(missing_ok=True)
        raise
    return target


def _write_new_file(target: Path, content: bytes) -> None:
    # Write a hidden temporary file, then link it into place: the link fails if
    # the target appeared meanwhile, so nothing is ever overwritten or half-written.
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise KeyringError(
                f"{target} already exists; remove it first to replace this reviewer."
            ) from None
    finally:
        temporary.unlink(missing_ok=True)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class KeyringHolder:
    """The current keyring, replaced only by a valid new one (reload on SIGHUP).

    With OpenPGP reviewers it also holds the gpg home that wraps to them
    (relay.crypto.openpgp_recipient.PublicKeyring), made under ``gpg_folder``
    (inside the relay's data folder) afresh at start and at every reload. The
    previous home is kept until the next reload, for submissions being sealed
    while the keys change.
    """

    def __init__(self, keys_dir: Path, gpg_folder: Path | None = None) -> None:
        self.keys_dir = keys_dir
        self._gpg_folder = gpg_folder
        self._previous: PublicKeyring | None = None
        self._current, self._public_keyring = self._load()

    def _load(self) -> tuple[Keyring, PublicKeyring | None]:
        # The gpg folder is made only when there are OpenPGP keys to check.
        has_openpgp_keys = any(p.suffix == OPENPGP_KEY_SUFFIX for p in self.keys_dir.glob("*"))
        if self._gpg_folder is not None and has_openpgp_keys:
            self._gpg_folder.mkdir(mode=0o700, exist_ok=True)
        keyring = load_keyring(self.keys_dir, scratch=self._scratch())
        if not keyring.openpgp_keys:
            return keyring, None
        if self._gpg_folder is None:
            raise KeyringError("OpenPGP reviewers need a folder for the relay's gpg home.")
        home = self._gpg_folder / f"home-{secrets.token_hex(4)}"
        # Expired keys stay out of gpg's home as they stay out of the sealing set.
        now = time.time()
        keys = [k for k in keyring.openpgp_keys if k.expires is None or k.expires > now]
        try:
            return keyring, PublicKeyring(home, keys)
        except GpgError as exc:
            shutil.rmtree(home, ignore_errors=True)
            raise KeyringError(f"The relay's gpg home could not be made: {exc}") from None

    def _scratch(self) -> Path | None:
        folder = self._gpg_folder
        return folder if folder is not None and folder.is_dir() else None

    @property
    def current(self) -> Keyring:
        """The keyring in force."""
        return self._current

    def usable(self) -> Keyring | None:
        """The reviewers tips are sealed to now (Keyring.usable_at), or None."""
        return self._current.usable_at(time.time())

    def recipients_document(self) -> dict[str, object]:
        """What browsers encrypt to now: the usable reviewers' document (an empty
        recipient list when there is none, which no browser can seal to)."""
        usable = self.usable()
        if usable is not None:
            return usable.recipients_document()
        return {"recipients": [], "fingerprint": None, "openpgp_keys": {}}

    def sealing_recipients(self) -> list[Recipient]:
        """What a submission sealed on the server is encrypted to: every reviewer whose
        key works now ([] when there is none)."""
        recipients: list[Recipient] = []
        usable = self.usable()
        for reviewer in usable.reviewers if usable is not None else ():
            if reviewer.openpgp_key is not None:
                assert self._public_keyring is not None  # made with the keyring
                recipients.append(OpenPGPRecipient(reviewer.openpgp_key, self._public_keyring))
            elif reviewer.age_recipient is not None:
                recipients.append(reviewer.age_recipient)
        return recipients

    def encrypt_text_to(self, reviewer_name: str, text: str) -> str:
        """``text`` as an armored OpenPGP message to the OpenPGP key of ``reviewer_name``.

        KeyringError if the current keyring has no such reviewer or they have no
        OpenPGP key; GpgError if gpg fails.
        """
        reviewer = next((r for r in self._current.reviewers if r.name == reviewer_name), None)
        if reviewer is None or reviewer.openpgp_key is None:
            raise KeyringError(f"Reviewer {reviewer_name} has no OpenPGP key in {self.keys_dir}.")
        assert self._public_keyring is not None  # made with the keyring
        return self._public_keyring.encrypt_text([reviewer.openpgp_key.fingerprint], text)

    def reload(self) -> Keyring:
        """Load keys_dir again; on KeyringError the old keyring stays and the error is raised."""
        new, public_keyring = self._load()
        if self._previous is not None:
            self._previous.close()
        self._previous = self._public_keyring
        self._current, self._public_keyring = new, public_keyring
        return new

    def remove_stale_gpg_homes(self) -> None:
        """Remove what an earlier run left in the gpg folder (a crash, a SIGKILL).

        Call it only while holding the data folder's lock: another relay on the
        same data folder would otherwise lose the home it is using.
        """
        folder = self._gpg_folder
        if folder is None or not folder.is_dir():
            return
        ours = {k.home for k in (self._previous, self._public_keyring) if k is not None}
        for entry in folder.iterdir():
            if entry not in ours:
                shutil.rmtree(entry, ignore_errors=True)

    def close(self) -> None:
        """Remove our gpg homes, and their folder once empty (at a clean stop)."""
        for keyring in (self._previous, self._public_keyring):
            if keyring is not None:
                keyring.close()
        self._previous = self._public_keyring = None
        if self._gpg_folder is not None:
            with contextlib.suppress(OSError):
                self._gpg_folder.rmdir()  # only if empty
