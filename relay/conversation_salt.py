"""The relay's conversation salt: 32 public random bytes, made once, kept in ``keys/``.

Every codename's keys are derived with this salt (docs/conversations.md, section 4),
so a relay that lost or changed it could never find a conversation's replies
again: it is made once (``tiprelay conversation-salt``, or the first
``tiprelay reviewer add``), never overwritten, and backed up with ``keys/``.
It is public (sources' browsers fetch it), not a secret.

The relay only reads it; ``keys/`` may be mounted read-only. A relay without
it runs without conversations, and says so; it never makes a salt of its own,
which would silently orphan every conversation at the next start.

File ``keys/conversation-salt``: comment lines (``#``) and one line of 64 hex digits.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from relay.errors import KeyringError

SALT_FILE_NAME = "conversation-salt"
SALT_BYTES = 32
_SALT_LINE = re.compile(r"[0-9a-f]{64}")
_MAX_FILE_BYTES = 4096
_HEADER = (
    "# tiprelay conversation salt: public, made once by this relay.\n"
    "# Back it up with the rest of keys/. Never edit, replace or delete it:\n"
    "# every conversation (codename) depends on it, and without it none can be found.\n"
)


def salt_path(keys_dir: Path) -> Path:
    """Where the salt is kept."""
    return keys_dir / SALT_FILE_NAME


def parse_salt_file(path: Path, content: bytes) -> bytes:
    """The 32 salt bytes in a salt file's content; KeyringError naming the file otherwise."""
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise KeyringError(f"{path} is not the text file tiprelay writes.") from None
    lines = [line.strip() for line in text.splitlines()]
    values = [line for line in lines if line and not line.startswith("#")]
    if len(values) != 1 or not _SALT_LINE.fullmatch(values[0]):
        raise KeyringError(
            f"{path} must hold one line of {SALT_BYTES * 2} lower-case hex digits. "
            "Restore it from your backup of keys/ (a new salt would orphan every conversation)."
        )
    return bytes.fromhex(values[0])


def load_conversation_salt(keys_dir: Path) -> bytes | None:
    """The salt, or None when the relay has none yet; KeyringError when the file is bad."""
    path = salt_path(keys_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyringError(f"{path} cannot be read: {exc.strerror}.") from None
    if size > _MAX_FILE_BYTES or not path.is_file():
        raise KeyringError(f"{path} is not the small text file tiprelay writes.")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise KeyringError(f"{path} cannot be read: {exc.strerror}.") from None
    return parse_salt_file(path, content)


def ensure_conversation_salt(keys_dir: Path) -> tuple[bytes, bool]:
    """The salt, made now if there is none: (salt, whether it was made now).

    Never overwrites: the new file is linked into place, which fails if
    another process made one meanwhile (then that one is returned).
    """
    existing = load_conversation_salt(keys_dir)
    if existing is not None:
        return existing, False
    keys_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(SALT_BYTES)
    target = salt_path(keys_dir)
    temporary = target.with_name(f".{SALT_FILE_NAME}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write((_HEADER + salt.hex() + "\n").encode("ascii"))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            made_meanwhile = load_conversation_salt(keys_dir)
            if made_meanwhile is None:
                raise KeyringError(f"{target} appeared and vanished; try again.") from None
            return made_meanwhile, False
    finally:
        temporary.unlink(missing_ok=True)
    folder = os.open(keys_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return salt, True
