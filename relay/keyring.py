"""The reviewers' public keys: one ``keys/<name>.toml`` per reviewer.

::

    name = "alice"
    age_recipient = "age1..."                 # every submission is encrypted to it
    api_key = "ed25519:<base64 of 32 bytes>"  # optional; signs reviewer API requests

Beside them, ``keys/conversation-salt`` is the relay's public conversation
salt (see relay.conversation_salt); it is not a reviewer.

The relay refuses to load the folder, naming the file, when it holds no
reviewer, a malformed or unexpected file, two reviewers sharing a key, or
anything anywhere in it that looks like private key material: a seized server
must yield public keys only (DESIGN.md, promise 3). README files and hidden
files are not reviewers, but they are checked for private material too.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from relay.conversation_salt import SALT_FILE_NAME
from relay.crypto.errors import KeyFormatError
from relay.crypto.recipients import X25519Recipient
from relay.errors import KeyringError

REVIEWER_NAME = re.compile(r"[a-z0-9_-]{1,64}")
API_KEY_PREFIX = "ed25519:"
API_KEY_SIZE = 32
REVIEWER_FILE_SUFFIX = ".toml"
# keys/ holds a few small text files; these bound the cost of a bad folder.
MAX_FILE_BYTES = 64 * 1024
MAX_FILES = 1000
_FIELDS = frozenset({"name", "age_recipient", "api_key"})

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
    """One reviewer: who can decrypt (age recipient) and who may use the API (api_key)."""

    name: str
    age_recipient: X25519Recipient
    api_key: bytes | None


@dataclass(frozen=True)
class Keyring:
    """The reviewers a relay encrypts to, sorted by name; never empty."""

    reviewers: tuple[Reviewer, ...]

    @property
    def recipients(self) -> list[X25519Recipient]:
        """Every reviewer's age recipient: each submission is encrypted to all of them."""
        return [reviewer.age_recipient for reviewer in self.reviewers]

    def reviewer_for_api_key_id(self, key_id: str) -> Reviewer | None:
        """The reviewer named ``key_id`` if they have an API key; otherwise None."""
        for reviewer in self.reviewers:
            if reviewer.name == key_id and reviewer.api_key is not None:
                return reviewer
        return None


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


def _parse_reviewer(path: Path, content: bytes) -> Reviewer:
    try:
        table = tomllib.loads(content.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KeyringError(f"{path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise KeyringError(
            f"{path}: unknown key(s) {', '.join(unknown)}; "
            "a reviewer file has only name, age_recipient and api_key."
        )
    name = table.get("name")
    if not isinstance(name, str) or not REVIEWER_NAME.fullmatch(name):
        raise KeyringError(f"{path}: name must be 1-64 characters of a-z, 0-9, _ and -.")
    if path.name != name + REVIEWER_FILE_SUFFIX:
        raise KeyringError(
            f'{path}: name "{name}" does not match the file name; '
            f"the file of reviewer {name} must be named {name}{REVIEWER_FILE_SUFFIX}."
        )
    recipient_text = table.get("age_recipient")
    if not isinstance(recipient_text, str):
        raise KeyringError(f'{path}: age_recipient ("age1...") is missing.')
    try:
        recipient = X25519Recipient.parse(recipient_text)
    except KeyFormatError as exc:
        raise KeyringError(f"{path}: age_recipient is not an age recipient: {exc}") from None
    api_key = _decode_api_key(path, table["api_key"]) if "api_key" in table else None
    return Reviewer(name=name, age_recipient=recipient, api_key=api_key)


def _refuse_shared_keys(reviewers: list[tuple[Path, Reviewer]]) -> None:
    seen: dict[object, Path] = {}
    for path, reviewer in reviewers:
        for label, key in (
            ("name", ("name", reviewer.name)),
            ("age recipient", ("age", reviewer.age_recipient)),
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


def _load_reviewers(keys_dir: Path) -> list[Reviewer]:
    if not keys_dir.is_dir():
        raise KeyringError(f"The keys folder {keys_dir} does not exist or is not a folder.")
    contents = _check_all_files(keys_dir)
    parsed: list[tuple[Path, Reviewer]] = []
    for entry in sorted(keys_dir.iterdir()):
        if _is_ignored(entry.name) or entry.name == SALT_FILE_NAME:
            continue  # the salt is read by relay.conversation_salt
        if entry.is_dir():
            raise KeyringError(f"{entry} is a folder; the keys folder holds only files.")
        if not entry.name.endswith(REVIEWER_FILE_SUFFIX):
            raise KeyringError(
                f"{entry} is not a reviewer file; the keys folder holds <name>.toml "
                "files (and READMEs, and conversation-salt). Remove or rename it."
            )
        parsed.append((entry, _parse_reviewer(entry, contents[entry])))
    _refuse_shared_keys(parsed)
    return [reviewer for _, reviewer in parsed]


def load_keyring(keys_dir: Path) -> Keyring:
    """Load and check every reviewer in ``keys_dir``; KeyringError names what is wrong."""
    reviewers = _load_reviewers(keys_dir)
    if not reviewers:
        raise KeyringError(
            f"No reviewer in {keys_dir}: add one with `tiprelay reviewer add`. "
            "Without a reviewer nobody could read the submissions."
        )
    return Keyring(reviewers=tuple(sorted(reviewers, key=lambda r: r.name)))


def write_reviewer_file(
    keys_dir: Path, name: str, age_recipient: X25519Recipient | str, api_key: bytes | None
) -> Path:
    """Write ``keys_dir/<name>.toml``; refuses to overwrite or to share another's keys."""
    if not REVIEWER_NAME.fullmatch(name):
        raise KeyringError("A reviewer name is 1-64 characters of a-z, 0-9, _ and -.")
    try:
        recipient = (
            age_recipient
            if isinstance(age_recipient, X25519Recipient)
            else X25519Recipient.parse(age_recipient)
        )
    except KeyFormatError as exc:
        raise KeyringError(f"Not an age recipient: {exc}") from None
    if api_key is not None and len(api_key) != API_KEY_SIZE:
        raise KeyringError(f"An API key is a {API_KEY_SIZE}-byte Ed25519 public key.")
    keys_dir.mkdir(parents=True, exist_ok=True)
    target = keys_dir / (name + REVIEWER_FILE_SUFFIX)
    if target.exists():
        raise KeyringError(f"{target} already exists; remove it first to replace this reviewer.")
    existing = _load_reviewers(keys_dir)
    new = Reviewer(name=name, age_recipient=recipient, api_key=api_key)
    others = [(keys_dir / (r.name + REVIEWER_FILE_SUFFIX), r) for r in existing]
    _refuse_shared_keys([*others, (target, new)])
    lines = [
        f"# tiprelay reviewer {name}: public keys only. Never put a secret key in this folder.",
        f'name = "{name}"',
        f'age_recipient = "{recipient}"',
    ]
    if api_key is not None:
        lines.append(f'api_key = "{API_KEY_PREFIX}{base64.b64encode(api_key).decode()}"')
    _write_new_file(target, ("\n".join(lines) + "\n").encode())
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
    """The current keyring, replaced only by a valid new one (reload on SIGHUP)."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._current = load_keyring(keys_dir)

    @property
    def current(self) -> Keyring:
        """The keyring in force."""
        return self._current

    def reload(self) -> Keyring:
        """Load keys_dir again; on KeyringError the old keyring stays and the error is raised."""
        new = load_keyring(keys_dir=self.keys_dir)
        self._current = new
        return new
