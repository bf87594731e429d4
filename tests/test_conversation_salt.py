"""The relay's conversation salt: made once by the operator's commands, kept in keys/,
never replaced, read (never made) by the relay."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relay.cli.demo import prepare_demo_folder
from relay.config import load_config
from relay.conversation_salt import (
    SALT_BYTES,
    ensure_conversation_salt,
    load_conversation_salt,
    salt_path,
)
from relay.crypto.identities import X25519Identity
from relay.errors import KeyringError
from relay.keyring import load_keyring
from relay.server.app import create_app
from tests.support_reviewer import TIPRELAY


def run_tiprelay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TIPRELAY, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_command_makes_the_salt_once_and_prints_the_same_one_after(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = run_tiprelay("conversation-salt", "--keys-dir", str(keys))
    assert first.returncode == 0, first.stderr
    assert "Back it up" in first.stdout
    salt = load_conversation_salt(keys)
    assert salt is not None and len(salt) == SALT_BYTES
    assert first.stdout.strip().splitlines()[-1] == salt.hex()
    again = run_tiprelay("conversation-salt", "--keys-dir", str(keys))
    assert again.returncode == 0
    assert again.stdout.strip() == salt.hex()  # same salt, no "made" line
    assert ensure_conversation_salt(keys) == (salt, False)


def test_adding_the_first_reviewer_makes_the_salt_and_the_keyring_accepts_it(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    recipient = str(X25519Identity.generate().recipient)
    added = run_tiprelay(
        "reviewer", "add", "alice", "--age-recipient", recipient, "--keys-dir", str(keys)
    )
    assert added.returncode == 0, added.stderr
    assert "conversation salt" in added.stdout
    assert salt_path(keys).is_file()
    assert [r.name for r in load_keyring(keys).reviewers] == ["alice"]
    salt = load_conversation_salt(keys)
    second = run_tiprelay(
        "reviewer",
        "add",
        "bob",
        "--age-recipient",
        str(X25519Identity.generate().recipient),
        "--keys-dir",
        str(keys),
    )
    assert second.returncode == 0
    assert "conversation salt" not in second.stdout
    assert load_conversation_salt(keys) == salt


def test_a_damaged_salt_stops_the_relay_with_a_clear_message(tmp_path: Path) -> None:
    config_path = prepare_demo_folder(tmp_path / "demo", 8080)
    salt_path(tmp_path / "demo" / "keys").write_text("not hex at all\n")
    config = load_config({}, config_path)
    with pytest.raises(KeyringError, match="Restore it from your backup"):
        create_app(config)


def test_the_demo_makes_a_salt_and_keeps_it_across_starts(tmp_path: Path) -> None:
    prepare_demo_folder(tmp_path / "demo", 8080)
    salt = load_conversation_salt(tmp_path / "demo" / "keys")
    assert salt is not None
    prepare_demo_folder(tmp_path / "demo", 8080)
    assert load_conversation_salt(tmp_path / "demo" / "keys") == salt
