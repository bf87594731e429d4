"""OpenPGP reviewers for tests: real gpg homes with real keys, made by the real gpg.

Each home lives in a short folder under /tmp (gpg-agent's socket paths are
limited in length) and answers passphrase prompts through gpg's loopback
pinentry, from a file named in its gpg.conf: no terminal, no pinentry program.
Every agent a home started is killed, and the home removed, when the test ends.

    with gpg_reviewer_home() as gpg_reviewer:
        gpg_reviewer.public_key        # armored public key, what keys/ holds
        gpg_reviewer.fingerprint       # 40 upper-case hex digits
        gpg_reviewer.environment()     # os.environ with GNUPGHOME set to the home
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relay.crypto.format import Stanza
from tests.support_process import default_signal_dispositions

PASSPHRASE = "correct horse battery staple"
# (primary algorithm and usage, encryption subkey algorithm or None)
KEY_KINDS: dict[str, tuple[str, str, str | None]] = {
    "cv25519": ("ed25519", "sign,cert", "cv25519"),
    "rsa3072": ("rsa3072", "sign,cert", "rsa3072"),
    "rsa2048": ("rsa2048", "sign,cert", "rsa2048"),
    "dsa": ("dsa2048", "sign,cert", "elg2048"),
    "sign-only": ("ed25519", "sign,cert", None),
    "secp256k1": ("secp256k1", "sign,cert", "secp256k1"),
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


@contextlib.contextmanager
def gpg_reviewer_home(name: str = "olga", kind: str = "cv25519") -> Iterator[GpgReviewer]:
    """A reviewer whose key (ed25519 + cv25519 by default) is in a test gpg home,
    removed (agents killed) when the block ends. A test module makes its fixture::

        @pytest.fixture
        def gpg_reviewer() -> Iterator[GpgReviewer]:
            with gpg_reviewer_home() as reviewer:
                yield reviewer
    """
    reviewer = make_gpg_reviewer(name, kind)
    try:
        yield reviewer
    finally:
        remove_gpg_home(reviewer.home)


def add_openpgp_reviewer(
    keys_dir: Path, name: str, reviewer: GpgReviewer, api_key_text: str | None = None
) -> None:
    """``keys/<name>.toml`` naming the key, and ``keys/<FINGERPRINT>.asc``, as an operator
    would write them by hand (``tiprelay reviewer add --openpgp-key`` writes the same)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / f"{reviewer.fingerprint}.asc").write_bytes(reviewer.public_key)
    lines = [f'name = "{name}"', f'openpgp_fingerprint = "{reviewer.fingerprint}"']
    if api_key_text is not None:
        lines.append(f'api_key = "{api_key_text}"')
    (keys_dir / f"{name}.toml").write_text("\n".join(lines) + "\n")


# The log folder is written into the shim: the relay gives gpg an environment of
# its own. Only the runs that read data have their stdin copied (the others may
# be started with a stdin nobody closes).
GPG_SHIM = """#!/bin/bash
# Records what each gpg run is given and gives back, then runs the real gpg.
set -o pipefail
record="{log}/$$.$RANDOM"
printf '%s\\n' "$@" > "$record.args"
case " $* " in
  *" --encrypt "*|*" --decrypt "*|*" --import "*)
    tee "$record.stdin" | /usr/bin/gpg "$@" | tee "$record.stdout" ;;
  *)
    : > "$record.stdin"
    /usr/bin/gpg "$@" | tee "$record.stdout" ;;
esac
"""


@dataclass(frozen=True)
class GpgRun:
    """One run of gpg through the shim: its arguments, stdin and stdout."""

    args: list[str]
    stdin: bytes
    stdout: bytes


def install_gpg_shim(folder: Path) -> tuple[dict[str, str], Path]:
    """A ``gpg`` on a PATH that records every run in a log folder; (environment, log)."""
    bin_dir = folder / "shim-bin"
    log = folder / "shim-log"
    bin_dir.mkdir(parents=True)
    log.mkdir()
    shim = bin_dir / "gpg"
    shim.write_text(GPG_SHIM.format(log=log))
    shim.chmod(0o755)
    environment = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return environment, log


def gpg_runs(log: Path) -> list[GpgRun]:
    """Every gpg run the shim recorded."""
    runs = []
    for args_file in sorted(log.glob("*.args")):
        stem = args_file.with_suffix("")
        runs.append(
            GpgRun(
                args=args_file.read_text().splitlines(),
                stdin=stem.with_suffix(stem.suffix + ".stdin").read_bytes(),
                stdout=stem.with_suffix(stem.suffix + ".stdout").read_bytes(),
            )
        )
    return runs


class FixedStanza:
    """A recipient that writes the stanza a test chose: a hostile sender's, or a forgery
    (anyone can encrypt to a public key, or write any bytes at all)."""

    def __init__(self, stanza: Stanza) -> None:
        self.stanza = stanza

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [self.stanza]
