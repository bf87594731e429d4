"""``tiprelay reviewer-key`` and ``tiprelay reviewer add|list|remove``, run as commands."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey, parse_public_key
from relay.errors import KeyringError
from relay.fingerprint import recipient_set_fingerprint
from relay.keyring import load_keyring
from tests.support_reviewer import TIPRELAY, recipient_of
from tests.support_server import generate_identity


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIPRELAY, *map(str, args)], capture_output=True, text=True)


def test_reviewer_key_writes_a_private_file_and_prints_the_public_line(tmp_path: Path) -> None:
    key_path = tmp_path / "api.key"
    result = run("reviewer-key", "-o", key_path)
    assert result.returncode == 0, result.stderr
    public_line = result.stdout.strip()
    assert public_line.startswith("ed25519:")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = SigningKey.from_key_file_text(key_path.read_text())
    assert parse_public_key(public_line) == key.public_bytes


def test_reviewer_key_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    key_path = tmp_path / "api.key"
    key_path.write_text("precious")
    result = run("reviewer-key", "-o", key_path)
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert key_path.read_text() == "precious"


def test_operator_adds_lists_and_removes_reviewers(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    alice_recipient = generate_identity(tmp_path / "alice.txt")
    bob_recipient = generate_identity(tmp_path / "bob.txt")
    api_line = run("reviewer-key", "-o", tmp_path / "alice.key").stdout.strip()

    added = run("reviewer", "add", "alice", "--age-recipient", alice_recipient,
                "--api-key", api_line, "--keys-dir", keys_dir)
    assert added.returncode == 0, added.stderr
    assert "SIGHUP" in added.stdout
    assert run("reviewer", "add", "bob", "--age-recipient", bob_recipient,
               "--keys-dir", keys_dir).returncode == 0

    keyring = load_keyring(keys_dir)
    assert [r.name for r in keyring.reviewers] == ["alice", "bob"]
    assert keyring.reviewers[0].api_key == parse_public_key(api_line)
    assert keyring.reviewers[1].api_key is None

    listing = run("reviewer", "list", "--keys-dir", keys_dir).stdout.splitlines()
    fingerprint = recipient_set_fingerprint([alice_recipient, bob_recipient])
    assert listing == [
        f"alice\t{alice_recipient}\t{api_line}",
        f"bob\t{bob_recipient}\t(no API key)",
        f"Recipient-set fingerprint (sources see it; pin-team prints it): {fingerprint}",
    ]
    # The same fingerprint a reviewer's pin-team prints for the same team.
    pinned = run("pin-team", "--team", tmp_path / "team", keys_dir / "alice.toml",
                 keys_dir / "bob.toml")  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    assert fingerprint in pinned.stdout

    again = run("reviewer", "add", "alice", "--age-recipient", bob_recipient,
                "--keys-dir", keys_dir)
    assert again.returncode != 0 and "already exists" in again.stderr

    assert run("reviewer", "remove", "bob", "--keys-dir", keys_dir).returncode == 0
    assert [r.name for r in load_keyring(keys_dir).reviewers] == ["alice"]
    missing = run("reviewer", "remove", "bob", "--keys-dir", keys_dir)
    assert missing.returncode != 0 and "no reviewer named 'bob'" in missing.stderr


@pytest.mark.parametrize(
    ("name", "recipient", "api_key", "message"),
    [
        ("../evil", None, None, "not a valid reviewer name"),
        ("carol", "age1notarecipient", None, "--age-recipient is not an age1... recipient"),
        ("carol", None, "ed25519:AAAA", "must be 32 bytes"),
        ("carol", None, "TIPRELAY-ED25519-SECRET-KEY-1" + "00" * 32, "--api-key is not the public"),
    ],
    ids=["path name", "bad recipient", "short api key", "secret key as api key"],
)
def test_reviewer_add_refuses_bad_input_clearly(
    tmp_path: Path, name: str, recipient: str | None, api_key: str | None, message: str
) -> None:
    keys_dir = tmp_path / "keys"
    good_recipient = recipient_of_new_identity(tmp_path)
    args: list[str | Path] = ["reviewer", "add", name, "--age-recipient",
                              recipient or good_recipient, "--keys-dir", keys_dir]
    if api_key:
        args += ["--api-key", api_key]
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not keys_dir.exists() or not list(keys_dir.iterdir())


def recipient_of_new_identity(tmp_path: Path) -> str:
    identity = tmp_path / "someone.txt"
    generate_identity(identity)
    return recipient_of(identity)


def test_a_signing_key_copied_into_keys_is_refused_by_the_keyring(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    recipient = generate_identity(tmp_path / "alice.txt")
    assert run("reviewer", "add", "alice", "--age-recipient", recipient,
               "--keys-dir", keys_dir).returncode == 0
    assert run("reviewer-key", "-o", keys_dir / "README-alice-api.key").returncode == 0
    with pytest.raises(KeyringError, match="Ed25519 secret key"):
        load_keyring(keys_dir)
