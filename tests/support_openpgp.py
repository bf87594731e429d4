"""OpenPGP reviewers for tests: real gpg homes with real keys, made by the real gpg.

Each home lives in a short folder under /tmp (gpg-agent's socket paths are
limited in length) and answers passphrase prompts through gpg's loopback
pinentry, from a file named in its gpg.conf: no terminal, no pinentry program.
Every agent a home started is killed, and the home removed, when the test ends.

    def test_something(gpg_reviewer: GpgReviewer) -> None:
        gpg_reviewer.public_key        # armored public key, what keys/ holds
        gpg_reviewer.fingerprint       # 40 upper-case hex digits
        gpg_reviewer.environment()     # os.environ with GNUPGHOME set to the home
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support_process import default_signal_dispositions

PASSPHRASE = "correct horse battery staple"
# (primary algorithm and usage, encryption subkey algorithm or None)
KEY_KINDS: dict[str, tuple[str, str, str | None]] = {
    "cv25519": ("ed25519", "sign,cert", "cv25519"),
    "rsa3072": ("rsa3072", "sign,cert", "rsa3072"),
    "rsa2048": ("rsa2048", "sign,cert", "rsa2048"),
    "dsa": ("dsa2048", "sign,cert", "elg2048"),
    "sign-only": ("ed25519", "sign,cert", None),
}


@dataclass
class GpgReviewer:
    """A gpg home holding one reviewer's key pair."""

    home: Path
    fingerprint: str
    public_key: bytes
    passphrase: str = PASSPHRASE

    def environment(self, **extra: str) -> dict[str, str]:
        """The process environment with this home as GNUPGHOME."""
        return {**os.environ, "GNUPGHOME": str(self.home), **extra}

    def gpg(self, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
        """Run the real gpg on this home; its stdout."""
        return run_gpg(self.home, *args, check=check, input_bytes=input_bytes)

    def secret_key(self) -> bytes:
        """The armored secret key (for tests that must see it refused)."""
        return self.gpg("--export-secret-keys", "--armor", self.fingerprint)

    def set_passphrase_answer(self, passphrase: str) -> None:
        """What the loopback pinentry answers from now on."""
        (self.home / "passphrase").write_text(passphrase + "\n")


def run_gpg(home: Path, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
    """The real gpg in batch mode on ``home``; raises with its stderr if it fails."""
    completed = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=input_bytes,
        capture_output=True,
        timeout=120,
        preexec_fn=default_signal_dispositions,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {completed.stderr.decode()}")
    return completed.stdout


def new_gpg_home() -> Path:
    """An empty gpg home with loopback pinentry, in a short path."""
    home = Path(tempfile.mkdtemp(prefix="tg", dir="/tmp"))
    home.chmod(0o700)
    (home / "gpg.conf").write_text(
        f"pinentry-mode loopback\npassphrase-file {home / 'passphrase'}\n"
    )
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    (home / "passphrase").write_text(PASSPHRASE + "\n")
    return home


def make_key(
    home: Path,
    name: str,
    kind: str = "cv25519",
    *,
    expire: str = "2y",
    faked_time: str | None = None,
) -> str:
    """Generate a key of ``kind`` in ``home``; its fingerprint."""
    primary, usage, subkey = KEY_KINDS[kind]
    faked = ["--faked-system-time", faked_time] if faked_time else []
    run_gpg(home, *faked, "--quick-gen-key", f"{name} <{name}@example.org>", primary, usage, expire)
    listing = run_gpg(home, "--with-colons", "--list-keys", f"{name}@example.org").decode()
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    if subkey is not None:
        run_gpg(home, *faked, "--quick-add-key", fingerprint, subkey, "encr", expire)
    return fingerprint


def kill_agents(home: Path) -> None:
    """Stop every daemon gpg started for ``home``."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        capture_output=True,
        timeout=30,
        preexec_fn=default_signal_dispositions,
        check=False,
    )


def make_gpg_reviewer(name: str = "olga", kind: str = "cv25519") -> GpgReviewer:
    """A new home with a fresh key of ``kind``; call ``remove_gpg_reviewer`` after."""
    home = new_gpg_home()
    fingerprint = make_key(home, name, kind)
    public_key = run_gpg(home, "--export", "--armor", fingerprint)
    return GpgReviewer(home=home, fingerprint=fingerprint, public_key=public_key)


def remove_gpg_home(home: Path) -> None:
    """Kill the home's agents and remove it."""
    kill_agents(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    """A reviewer whose key (ed25519 + cv25519) is in a test gpg home."""
    reviewer = make_gpg_reviewer()
    try:
        yield reviewer
    finally:
        remove_gpg_home(reviewer.home)


@pytest.fixture
def gpg_home() -> Iterator[Path]:
    """An empty test gpg home with loopback pinentry."""
    home = new_gpg_home()
    try:
        yield home
    finally:
        remove_gpg_home(home)
