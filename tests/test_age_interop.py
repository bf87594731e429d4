"""Interoperability with the two reference age implementations, both ways.

Stock `age` (Go, the Debian package) and pyrage (rage, Rust; a test oracle
only) must read what relay.crypto and `tiprelay` write, and we must read what
they write: every chunk-boundary size, several recipients (each identity
alone decrypts), binary and armored, X25519 and passphrase (scrypt) files, and
identity files protected by `tiprelay keygen`. Passphrases for stock age are
typed into a pseudo-terminal, as a person would.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
from support_pty import run_on_tty

from relay.crypto import errors
from relay.crypto.decrypt import decrypt_bytes, open_decrypted
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import ScryptIdentity, X25519Identity
from relay.crypto.recipients import ScryptRecipient, X25519Recipient, parse_recipient

AGE = "/usr/bin/age"
AGE_KEYGEN = "/usr/bin/age-keygen"
TIPRELAY = str(Path(sys.executable).with_name("tiprelay"))
CHUNK = 64 * 1024
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 1024 * 1024 + 1]
SIZE_IDS = ["0", "1", "64KiB-1", "64KiB", "64KiB+1", "1MiB+1"]
ARMOR = [pytest.param(False, id="binary"), pytest.param(True, id="armored")]
PASSPHRASE = "correct horse battery staple"
FAST_WORK_FACTOR = 12  # stock age and rage accept any factor up to their maximum


@dataclass(frozen=True)
class Key:
    """One reviewer key: its identity file and the parsed halves."""

    made_by: str
    path: Path
    identity: X25519Identity
    recipient: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[Key]:
    """Three recipients: two made by relay.crypto, one by stock age-keygen."""
    folder = tmp_path_factory.mktemp("keys")
    made: list[Key] = []
    for number in (1, 2):
        identity = X25519Identity.generate()
        path = folder / f"ours{number}.key"
        path.write_text(f"{identity}\n")
        made.append(Key(f"ours{number}", path, identity, str(identity.recipient)))
    stock_path = folder / "stock.key"
    subprocess.run([AGE_KEYGEN, "-o", stock_path], check=True, capture_output=True)
    secret = next(
        line for line in stock_path.read_text().splitlines() if line.startswith("AGE-SECRET")
    )
    stock_identity = X25519Identity.parse(secret)
    public = subprocess.run(
        [AGE_KEYGEN, "-y", stock_path], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert public == str(stock_identity.recipient)  # both derive the same recipient
    made.append(Key("stock", stock_path, stock_identity, public))
    return made


def _plaintext(size: int) -> bytes:
    return os.urandom(size)


def _stock_decrypt(key: Path, ciphertext: Path) -> bytes:
    done = subprocess.run(
        [AGE, "-d", "-i", key, ciphertext], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _unarmor(armored: bytes) -> bytes:
    """The binary age file inside armor (to look at its stanza types)."""
    return base64.b64decode("".join(armored.decode().strip().splitlines()[1:-1]))


def _armored(data: bytes) -> bool:
    return data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n")


# --- X25519, library <-> stock age ----------------------------------------------------


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_stock_age_decrypts_our_file_with_each_recipients_identity(
    keys: list[Key], tmp_path: Path, size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    recipients = [X25519Recipient.parse(k.recipient) for k in keys]
    ciphertext = encrypt_bytes(plaintext, recipients, armor=armor)
    assert _armored(ciphertext) == armor
    path = tmp_path / "file.age"
    path.write_bytes(ciphertext)
    for key in keys:
        assert _stock_decrypt(key.path, path) == plaintext, key.made_by


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_we_decrypt_stock_age_file_with_each_recipients_identity(
    keys: list[Key], tmp_path: Path, size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    source = tmp_path / "plain"
    source.write_bytes(plaintext)
    target = tmp_path / "file.age"
    argv = [AGE, "-e", "-o", str(target)] + (["-a"] if armor else [])
    for key in keys:
        argv += ["-r", key.recipient]
    subprocess.run([*argv, str(source)], check=True, capture_output=True, timeout=60)
    ciphertext = target.read_bytes()
    assert _armored(ciphertext) == armor
    for key in keys:
        assert decrypt_bytes(ciphertext, [key.identity]) == plaintext, key.made_by
        with target.open("rb") as handle, open_decrypted(handle, [key.identity]) as reader:
            assert reader.read() == plaintext, key.made_by
    with pytest.raises(errors.NoIdentityMatchError):
        decrypt_bytes(ciphertext, [X25519Identity.generate()])


# --- X25519, library <-> pyrage -------------------------------------------------------


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_pyrage_decrypts_our_file_with_each_recipients_identity(
    keys: list[Key], size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    recipients = [parse_recipient(k.recipient) for k in keys]
    ciphertext = encrypt_bytes(plaintext, recipients, armor=armor)
    for key in keys:
        rage_identity = pyrage.x25519.Identity.from_str(str(key.identity))
        assert pyrage.decrypt(ciphertext, [rage_identity]) == plaintext, key.made_by


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_we_decrypt_pyrage_file_with_each_recipients_identity(
    keys: list[Key], size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    rage_recipients = [pyrage.x25519.Recipient.from_str(k.recipient) for k in keys]
    ciphertext = pyrage.encrypt(plaintext, rage_recipients, armored=armor)
    assert _armored(ciphertext) == armor
    for key in keys:
        assert decrypt_bytes(ciphertext, [key.identity]) == plaintext, key.made_by


def test_pyrage_generated_identity_round_trips_through_our_parser() -> None:
    rage_identity = pyrage.x25519.Identity.generate()
    ours = X25519Identity.parse(str(rage_identity))
    assert str(ours) == str(rage_identity)
    assert str(ours.recipient) == str(rage_identity.to_public())


# --- the tiprelay console script <-> stock age, through pipes and files ----------------


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", [0, CHUNK + 1, 1024 * 1024 + 1], ids=["0", "64KiB+1", "1MiB+1"])
def test_tiprelay_encrypt_on_a_pipe_is_read_by_stock_age(
    keys: list[Key], tmp_path: Path, size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    argv = [TIPRELAY, "encrypt"] + (["-a"] if armor else [])
    for key in keys:
        argv += ["-r", key.recipient]
    encrypted = subprocess.run(argv, input=plaintext, capture_output=True, check=True, timeout=60)
    assert _armored(encrypted.stdout) == armor
    path = tmp_path / "piped.age"
    path.write_bytes(encrypted.stdout)
    for key in keys:
        assert _stock_decrypt(key.path, path) == plaintext, key.made_by


@pytest.mark.parametrize("armor", ARMOR)
@pytest.mark.parametrize("size", [0, CHUNK + 1, 1024 * 1024 + 1], ids=["0", "64KiB+1", "1MiB+1"])
def test_stock_age_output_is_read_by_tiprelay_decrypt(
    keys: list[Key], tmp_path: Path, size: int, armor: bool
) -> None:
    plaintext = _plaintext(size)
    argv = [AGE, "-e"] + (["-a"] if armor else [])
    for key in keys:
        argv += ["-r", key.recipient]
    encrypted = subprocess.run(argv, input=plaintext, capture_output=True, check=True, timeout=60)
    for key in keys:
        # stdin -> stdout
        piped = subprocess.run(
            [TIPRELAY, "decrypt", "-i", key.path],
            input=encrypted.stdout, capture_output=True, check=False, timeout=60,
        )
        assert piped.returncode == 0, piped.stderr.decode()
        assert piped.stdout == plaintext, key.made_by
        # file -> -o file
        source = tmp_path / f"{key.made_by}.age"
        source.write_bytes(encrypted.stdout)
        target = tmp_path / f"{key.made_by}.out"
        subprocess.run(
            [TIPRELAY, "decrypt", "-i", key.path, "-o", target, source],
            capture_output=True, check=True, timeout=60,
        )
        assert target.read_bytes() == plaintext, key.made_by


# --- passphrase (scrypt) files ---------------------------------------------------------


@pytest.mark.parametrize("armor", ARMOR)
def test_stock_age_decrypts_our_passphrase_file_typed_on_its_terminal(
    tmp_path: Path, armor: bool
) -> None:
    plaintext = _plaintext(CHUNK + 1)
    recipient = ScryptRecipient(PASSPHRASE.encode(), FAST_WORK_FACTOR)
    path = tmp_path / "secret.age"
    path.write_bytes(encrypt_bytes(plaintext, [recipient], armor=armor))
    done = run_on_tty([AGE, "-d", path], answers=[(b"Enter passphrase", PASSPHRASE.encode())])
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plaintext
    wrong = run_on_tty([AGE, "-d", path], answers=[(b"Enter passphrase", b"not the passphrase")])
    assert wrong.returncode != 0
    assert b"incorrect passphrase" in wrong.stderr
    assert wrong.stdout == b""


@pytest.mark.parametrize("armor", ARMOR)
def test_pyrage_decrypts_our_passphrase_file(armor: bool) -> None:
    plaintext = _plaintext(CHUNK)
    recipient = ScryptRecipient(PASSPHRASE.encode(), FAST_WORK_FACTOR)
    ciphertext = encrypt_bytes(plaintext, [recipient], armor=armor)
    assert pyrage.passphrase.decrypt(ciphertext, PASSPHRASE) == plaintext
    with pytest.raises(pyrage.DecryptError):
        pyrage.passphrase.decrypt(ciphertext, "not the passphrase")


@pytest.mark.slow
def test_we_decrypt_pyrage_passphrase_file_at_its_calibrated_work_factor() -> None:
    # rage picks its work factor by timing (about one second): a realistic file.
    plaintext = _plaintext(CHUNK + 1)
    ciphertext = pyrage.passphrase.encrypt(plaintext, PASSPHRASE)
    assert b"\n-> scrypt " in ciphertext
    assert decrypt_bytes(ciphertext, [ScryptIdentity(PASSPHRASE.encode())]) == plaintext


def test_our_scrypt_work_factor_is_written_as_requested() -> None:
    ciphertext = encrypt_bytes(b"x", [ScryptRecipient(PASSPHRASE.encode(), FAST_WORK_FACTOR)])
    stanza_line = ciphertext.split(b"\n")[1].split(b" ")
    assert stanza_line[:2] == [b"->", b"scrypt"]
    assert stanza_line[3] == str(FAST_WORK_FACTOR).encode()


def _tiprelay_keygen_protected(folder: Path) -> tuple[Path, str]:
    passphrase_file = folder / "passphrase.txt"
    passphrase_file.write_text(PASSPHRASE + "\n")
    identity_path = folder / "reviewer.identity"
    made = subprocess.run(
        [TIPRELAY, "keygen", "-o", identity_path, "--passphrase-file", passphrase_file,
         "--work-factor", str(FAST_WORK_FACTOR)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return identity_path, made.stdout.strip()


def test_stock_age_opens_identity_file_protected_by_tiprelay_keygen(tmp_path: Path) -> None:
    identity_path, recipient = _tiprelay_keygen_protected(tmp_path)
    assert identity_path.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert b"AGE-SECRET-KEY" not in identity_path.read_bytes()
    plaintext = _plaintext(CHUNK + 1)
    message = tmp_path / "tip.age"
    subprocess.run(
        [TIPRELAY, "encrypt", "-r", recipient, "-o", message],
        input=plaintext, capture_output=True, check=True, timeout=60,
    )
    done = run_on_tty(
        [AGE, "-d", "-i", identity_path, message],
        answers=[(b"passphrase", PASSPHRASE.encode())],
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"passphrase" in done.terminal.lower()  # it really was asked for
    assert done.stdout == plaintext


def test_tiprelay_opens_identity_file_protected_by_stock_age_passphrase(
    tmp_path: Path,
) -> None:
    # Stock age encrypts to a passphrase at its fixed default work factor (18):
    # the one slow scrypt file in this module.
    plain_identity = tmp_path / "plain.identity"
    subprocess.run([AGE_KEYGEN, "-o", plain_identity], check=True, capture_output=True)
    recipient = subprocess.run(
        [AGE_KEYGEN, "-y", plain_identity], check=True, capture_output=True, text=True
    ).stdout.strip()
    protected = tmp_path / "protected.identity"
    made = run_on_tty(
        [AGE, "-e", "-p", "-a", "-o", protected, plain_identity],
        answers=[(b"Enter passphrase", PASSPHRASE.encode()),
                 (b"Confirm passphrase", PASSPHRASE.encode())],
    )
    assert made.returncode == 0, made.stderr.decode()
    plain_identity.unlink()
    assert b"\n-> scrypt " in _unarmor(protected.read_bytes())
    plaintext = _plaintext(CHUNK + 1)
    message = tmp_path / "tip.age"
    subprocess.run([AGE, "-e", "-r", recipient, "-o", message],
                   input=plaintext, check=True, capture_output=True, timeout=60)
    passphrase_file = tmp_path / "passphrase.txt"
    passphrase_file.write_text(PASSPHRASE + "\n")
    done = subprocess.run(
        [TIPRELAY, "decrypt", "-i", protected, "--passphrase-file", passphrase_file, message],
        capture_output=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plaintext
