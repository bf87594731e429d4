"""relay.keyring: reviewers' public keys in keys/, and nothing secret, ever."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.crypto import bech32
from relay.crypto.identities import X25519Identity
from relay.crypto.identity_file import protect_identity_file
from relay.crypto.openpgp_keys import OpenPGPPublicKey
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey
from relay.errors import KeyringError
from relay.keyring import (
    MAX_FILE_BYTES,
    Keyring,
    KeyringHolder,
    Reviewer,
    load_keyring,
    write_reviewer_file,
)


def new_recipient() -> str:
    return str(X25519Identity.generate().recipient)


def new_api_key() -> bytes:
    return SigningKey.generate().public_bytes


def reviewer_toml(name: str, recipient: str, api_key: bytes | None = None) -> str:
    lines = [f'name = "{name}"', f'age_recipient = "{recipient}"']
    if api_key is not None:
        lines.append(f'api_key = "ed25519:{base64.b64encode(api_key).decode()}"')
    return "\n".join(lines) + "\n"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "alice.toml").write_text(reviewer_toml("alice", new_recipient(), new_api_key()))
    return folder


# --- loading ---


def test_valid_reviewers_load_sorted_with_recipients_and_api_keys(keys: Path):
    bob_recipient = new_recipient()
    (keys / "bob.toml").write_text(reviewer_toml("bob", bob_recipient))
    keyring = load_keyring(keys)
    assert [r.name for r in keyring.reviewers] == ["alice", "bob"]
    assert all(isinstance(r, X25519Recipient) for r in keyring.age_recipients)
    assert keyring.recipients == [str(r) for r in keyring.age_recipients]
    assert str(keyring.recipients[1]) == bob_recipient
    alice = keyring.reviewer_for_api_key_id("alice")
    assert alice is not None and alice.api_key is not None and len(alice.api_key) == 32
    # bob has no API key, so no API access; unknown ids get nothing.
    assert keyring.reviewer_for_api_key_id("bob") is None
    assert keyring.reviewer_for_api_key_id("mallory") is None


def test_readme_and_hidden_files_are_not_reviewers(keys: Path):
    (keys / "README.md").write_text("One <name>.toml per reviewer; public keys only.\n")
    (keys / ".gitkeep").write_text("")
    assert [r.name for r in load_keyring(keys).reviewers] == ["alice"]


def test_empty_keys_folder_is_refused(tmp_path: Path):
    empty = tmp_path / "keys"
    empty.mkdir()
    with pytest.raises(KeyringError, match="No reviewer"):
        load_keyring(empty)
    (empty / "README").write_text("nothing here yet\n")
    with pytest.raises(KeyringError, match="No reviewer"):
        load_keyring(empty)


def test_missing_keys_folder_is_refused(tmp_path: Path):
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(tmp_path / "nowhere")


# --- private key material: each kind, wherever it is in keys/ ---


def _run(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> bytes:
    return subprocess.run(
        command, cwd=cwd, env=env, check=True, capture_output=True, timeout=60
    ).stdout


@pytest.fixture(scope="module")
def gnupg_secrets() -> Iterator[dict[str, bytes]]:
    """A real OpenPGP secret key: armored export, binary export, and gpg-agent's key file."""
    home = Path(tempfile.mkdtemp(prefix="gpg", dir="/tmp"))  # short: agent socket path
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        _run("gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "Reviewer <reviewer@example.org>", "ed25519", "sign", "never", env=env)
        armored = _run("gpg", "--batch", "--armor", "--pinentry-mode", "loopback",
                       "--passphrase", "", "--export-secret-keys", env=env)
        binary = _run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                      "--export-secret-keys", env=env)
        agent_key = next((home / "private-keys-v1.d").glob("*.key")).read_bytes()
        yield {"armored": armored, "binary": binary, "agent": agent_key}
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _age_keygen(tmp: Path) -> bytes:
    _run("age-keygen", "-o", str(tmp / "id.txt"))
    return (tmp / "id.txt").read_bytes()


def _ssh_key(tmp: Path) -> bytes:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id_ed25519"))
    return (tmp / "id_ed25519").read_bytes()


def _pem_key(tmp: Path) -> bytes:
    return _run("openssl", "genpkey", "-algorithm", "ed25519")


def _age_file(tmp: Path) -> bytes:
    (tmp / "plain").write_bytes(b"anything")
    return _run("age", "-r", new_recipient(), str(tmp / "plain"))


def _protected_identity(tmp: Path) -> bytes:
    return protect_identity_file(str(X25519Identity.generate()), b"passphrase", work_factor=10)


def _putty_key(tmp: Path) -> bytes:
    # No puttygen here: the format's own header lines, as PuTTY writes them.
    return (
        b"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\n"
        b"Public-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIB\nxx\nPrivate-Lines: 1\nAAAAIB\n"
    )


PRIVATE_MATERIAL: dict[str, Callable[[Path], bytes]] = {
    "age identity (age-keygen)": _age_keygen,
    "age identity in lower case": lambda t: str(X25519Identity.generate()).lower().encode(),
    "age plugin identity": lambda t: b"AGE-PLUGIN-YUBIKEY-1QQSZQQSZQQSZQQSZQQSZQ\n",
    "passphrase-protected age identity": _protected_identity,
    "binary age file": _age_file,
    "OpenSSH private key": _ssh_key,
    "PKCS#8 PEM private key": _pem_key,
    "PuTTY private key": _putty_key,
    "tiprelay API signing key": lambda t: SigningKey.generate().to_key_file_text().encode(),
    "bech32 secret with another prefix": lambda t: bech32.encode("secret", os.urandom(32))
    .encode(),
}


# What the refusal says for each kind: proves each detector, not just any refusal.
RECOGNISED_AS = {
    "age identity (age-keygen)": "an age secret key",
    "age identity in lower case": "an age secret key",
    "age plugin identity": "an age plugin identity",
    "passphrase-protected age identity": "an age-encrypted file",
    "binary age file": "an age-encrypted file",
    "OpenSSH private key": "a PEM or OpenSSH private key",
    "PKCS#8 PEM private key": "a PEM or OpenSSH private key",
    "PuTTY private key": "a PuTTY private key",
    "tiprelay API signing key": "an Ed25519 secret key",
    "bech32 secret with another prefix": "a bech32-encoded secret",
}


@pytest.mark.parametrize("kind", sorted(PRIVATE_MATERIAL))
def test_private_key_material_anywhere_in_keys_is_refused(keys: Path, tmp_path: Path, kind: str):
    work = tmp_path / "work"
    work.mkdir()
    (keys / "identity.txt").write_bytes(PRIVATE_MATERIAL[kind](work))
    with pytest.raises(KeyringError, match=r"identity\.txt looks like") as caught:
        load_keyring(keys)
    assert RECOGNISED_AS[kind] in str(caught.value)
    assert "public keys only" in str(caught.value)


@pytest.mark.parametrize(
    ("form", "recognised_as"),
    [
        ("armored", "looks like an OpenPGP private key"),
        ("binary", "is not a text file"),
        ("agent", "looks like a GnuPG agent private key"),
    ],
)
def test_openpgp_secret_keys_are_refused(
    keys: Path, gnupg_secrets: dict[str, bytes], form: str, recognised_as: str
):
    (keys / "reviewer.gpg").write_bytes(gnupg_secrets[form])
    with pytest.raises(KeyringError, match=r"reviewer\.gpg " + recognised_as):
        load_keyring(keys)


@pytest.mark.parametrize("place", ["README.md", ".hidden", ".config/nested/key.txt"])
def test_private_material_is_refused_even_in_ignored_files(keys: Path, place: str):
    path = keys / place
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("notes\n" + str(X25519Identity.generate()) + "\n")
    with pytest.raises(KeyringError, match="age secret key"):
        load_keyring(keys)


def test_secret_key_pasted_as_recipient_is_refused_as_private_material(keys: Path):
    (keys / "bob.toml").write_text(reviewer_toml("bob", str(X25519Identity.generate())))
    with pytest.raises(KeyringError, match=r"bob\.toml looks like an age secret key"):
        load_keyring(keys)


# --- malformed folders and files ---


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name = \n", "not valid TOML"),
        ('name = "bob"\nage_recipient = "{r}"\nowner = "x"\n', "unknown key"),
        ('name = "bob"\n', "age_recipient"),
        ('name = "bob"\nage_recipient = "age1notarecipient"\n', "not an age recipient"),
        ('name = "bob"\nage_recipient = "{r}"\napi_key = "rsa:AAAA"\n', "ed25519:"),
        ('name = "bob"\nage_recipient = "{r}"\napi_key = "ed25519:%%%"\n', "base64"),
        ('name = "bob"\nage_recipient = "{r}"\napi_key = "ed25519:{k64}"\n', "64 bytes"),
        ('name = "Bob"\nage_recipient = "{r}"\n', "name must be"),
        ('name = "carol"\nage_recipient = "{r}"\n', "does not match the file name"),
        ('name = 7\nage_recipient = "{r}"\n', "name must be"),
    ],
)
def test_malformed_reviewer_file_is_refused_naming_it(keys: Path, content: str, message: str):
    text = content.replace("{r}", new_recipient())
    text = text.replace("{k64}", base64.b64encode(os.urandom(64)).decode())
    (keys / "bob.toml").write_text(text)
    with pytest.raises(KeyringError, match=r"bob\.toml") as caught:
        load_keyring(keys)
    assert message in str(caught.value)


def test_unexpected_file_or_folder_is_refused(keys: Path):
    (keys / "bob.pub").write_text(new_recipient() + "\n")
    with pytest.raises(KeyringError, match=r"bob\.pub is not a reviewer file"):
        load_keyring(keys)
    (keys / "bob.pub").unlink()
    (keys / "old").mkdir()
    with pytest.raises(KeyringError, match="is a folder"):
        load_keyring(keys)


def test_oversized_file_is_refused_without_reading_it(keys: Path):
    with (keys / "README.md").open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(KeyringError, match=r"README\.md is \d+ bytes"):
        load_keyring(keys)


def test_shared_recipient_is_refused(keys: Path):
    shared = new_recipient()
    (keys / "bob.toml").write_text(reviewer_toml("bob", shared))
    (keys / "carol.toml").write_text(reviewer_toml("carol", shared))
    with pytest.raises(KeyringError, match="same age recipient"):
        load_keyring(keys)


def test_shared_api_key_is_refused(keys: Path):
    shared = new_api_key()
    (keys / "bob.toml").write_text(reviewer_toml("bob", new_recipient(), shared))
    (keys / "carol.toml").write_text(reviewer_toml("carol", new_recipient(), shared))
    with pytest.raises(KeyringError, match="same api_key"):
        load_keyring(keys)


def test_second_file_claiming_an_existing_name_is_refused(keys: Path):
    # Names are file names, so two reviewers cannot share one.
    (keys / "alice2.toml").write_text(reviewer_toml("alice", new_recipient()))
    with pytest.raises(KeyringError, match=r'alice2\.toml: name "alice" does not match'):
        load_keyring(keys)


# --- writing reviewer files (`tiprelay reviewer add`) ---


def test_written_reviewer_file_loads_back(tmp_path: Path):
    keys = tmp_path / "keys"
    recipient = new_recipient()
    api_key = new_api_key()
    path = write_reviewer_file(keys, "dana-2", recipient, api_key)
    assert path == keys / "dana-2.toml"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in keys.iterdir()] == ["dana-2.toml"]  # no temporary file left
    reviewer = load_keyring(keys).reviewers[0]
    assert (reviewer.name, str(reviewer.age_recipient), reviewer.api_key) == (
        "dana-2", recipient, api_key
    )
    write_reviewer_file(keys, "erin", X25519Recipient.parse(new_recipient()), None)
    assert load_keyring(keys).reviewer_for_api_key_id("erin") is None


def test_writing_refuses_to_overwrite_a_reviewer(keys: Path):
    before = (keys / "alice.toml").read_bytes()
    with pytest.raises(KeyringError, match="already exists"):
        write_reviewer_file(keys, "alice", new_recipient(), None)
    assert (keys / "alice.toml").read_bytes() == before


@pytest.mark.parametrize("name", ["", "Alice", "../evil", "a b", "x" * 65, "alice.toml"])
def test_writing_refuses_bad_names(tmp_path: Path, name: str):
    with pytest.raises(KeyringError, match="reviewer name"):
        write_reviewer_file(tmp_path / "keys", name, new_recipient(), None)
    assert not (tmp_path / "keys").exists()


def test_writing_refuses_bad_keys(keys: Path):
    with pytest.raises(KeyringError, match="secret key"):
        write_reviewer_file(keys, "bob", str(X25519Identity.generate()), None)
    with pytest.raises(KeyringError, match="32-byte"):
        write_reviewer_file(keys, "bob", new_recipient(), os.urandom(64))
    alice = load_keyring(keys).reviewers[0]
    with pytest.raises(KeyringError, match="same age recipient"):
        write_reviewer_file(keys, "bob", alice.age_recipient, None)
    assert not (keys / "bob.toml").exists()


# --- reloading ---


def test_holder_reload_applies_valid_changes(keys: Path):
    holder = KeyringHolder(keys)
    assert [r.name for r in holder.current.reviewers] == ["alice"]
    write_reviewer_file(keys, "bob", new_recipient(), None)
    assert [r.name for r in holder.reload().reviewers] == ["alice", "bob"]
    (keys / "alice.toml").unlink()
    holder.reload()
    assert [r.name for r in holder.current.reviewers] == ["bob"]
    assert holder.current.reviewer_for_api_key_id("alice") is None


def test_holder_keeps_the_old_keyring_when_the_new_one_is_invalid(keys: Path):
    holder = KeyringHolder(keys)
    old = holder.current
    (keys / "stray.txt").write_text(str(X25519Identity.generate()))
    with pytest.raises(KeyringError, match=r"stray\.txt"):
        holder.reload()
    assert holder.current is old


def test_holder_refuses_to_start_without_valid_keys(tmp_path: Path):
    with pytest.raises(KeyringError):
        KeyringHolder(tmp_path)


def test_the_repository_keys_readme_passes_the_checks(keys: Path):
    readme = Path(__file__).resolve().parent.parent / "keys" / "README.md"
    shutil.copy(readme, keys / "README.md")
    assert [r.name for r in load_keyring(keys).reviewers] == ["alice"]



DAY = 86400
NOW = 1_800_000_000.0


def _openpgp_reviewer(name: str, digit: str, expires: float | None) -> Reviewer:
    key = OpenPGPPublicKey(
        fingerprint=digit * 40, encryption_key_ids=frozenset({digit * 16}), user_ids=(name,),
        expires=None if expires is None else int(expires), armored="",
    )
    return Reviewer(name=name, age_recipient=None, api_key=None, openpgp_key=key)


def test_expired_openpgp_keys_leave_the_sealing_set_and_keys_expiring_within_14_days_are_named():
    age = Reviewer(name="ada", age_recipient=X25519Identity.generate().recipient, api_key=None)
    reviewers = (
        age,
        _openpgp_reviewer("bob", "B", NOW - 1),  # expired a second ago
        _openpgp_reviewer("cyd", "C", NOW),  # expires this instant: no longer usable
        _openpgp_reviewer("dan", "D", NOW + 13 * DAY + 5),
        _openpgp_reviewer("eve", "E", NOW + 14 * DAY),  # 14 days away: not yet
        _openpgp_reviewer("fay", "F", None),
    )
    keyring = Keyring(reviewers=reviewers)
    usable = keyring.usable_at(NOW)
    assert usable is not None
    assert [r.name for r in usable.reviewers] == ["ada", "dan", "eve", "fay"]
    assert usable.recipients == [str(age.age_recipient), "openpgp:" + "D" * 40,
                                 "openpgp:" + "E" * 40, "openpgp:" + "F" * 40]
    notices = {n.reviewer: n for n in keyring.expiry_notices(NOW)}
    assert set(notices) == {"bob", "cyd", "dan"}
    assert notices["bob"].expired and notices["cyd"].expired and not notices["dan"].expired
    assert (notices["dan"].days_left, notices["dan"].fingerprint) == (13, "D" * 40)
    assert notices["bob"].day == "2027-01-15"
    assert keyring.usable_at(NOW - 10) is not None
    assert len(keyring.usable_at(NOW - 10).reviewers) == 6  # type: ignore[union-attr]
    only_expired = Keyring(reviewers=reviewers[1:3])
    assert only_expired.usable_at(NOW) is None
    assert only_expired.usable_at(NOW - 2) is not None
