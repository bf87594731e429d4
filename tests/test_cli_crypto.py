"""The offline commands as a person uses them: the real `tiprelay` console script.

keygen, encrypt and decrypt through stdin/stdout and files; the refusals
(overwrite, binary to a terminal, no way to ask a passphrase) and the error
messages a reviewer meets (wrong identity, truncated, damaged chunk N); that
no half-written output file ever appears; that memory does not grow with the
file; and that every command's --help shows an example.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from support_pty import run_on_tty

from relay.cli import COMMANDS
from relay.cli import main as cli_main
from relay.crypto import stream
from relay.crypto.decrypt import decrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.crypto.identity_file import load_identity_file
from relay.crypto.recipients import X25519Recipient
from tests.support_process import run, spawned

TIPRELAY = str(Path(sys.executable).with_name("tiprelay"))
CHUNK = 64 * 1024
SEALED = CHUNK + 16
PASSPHRASE = "a passphrase of several words"
WORK_FACTOR = "12"  # fast scrypt for tests; the default (18) is exercised by the interop tests


def tiprelay(
    *args: str | Path, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the console script without a controlling terminal (like cron or a pipeline)."""
    return run(
        [TIPRELAY, *map(str, args)], input=stdin, capture_output=True, cwd=cwd,
        start_new_session=True, timeout=120, check=False,
    )


def ok(done: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert done.returncode == 0, done.stderr.decode()
    return done


def listing(folder: Path) -> list[str]:
    """Every name in the folder, hidden temporary files included."""
    return sorted(os.listdir(folder))


@pytest.fixture
def reviewer(tmp_path: Path) -> tuple[Path, str]:
    """An unprotected identity file made by keygen, and its recipient."""
    keys = tmp_path / "keys"
    keys.mkdir()
    path = keys / "reviewer.identity"
    done = ok(tiprelay("keygen", "--no-passphrase", "-o", path))
    return path, done.stdout.decode().strip()


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase.txt"
    path.write_text(PASSPHRASE + "\n")
    return path


# --- keygen -----------------------------------------------------------------------------


def test_keygen_with_passphrase_file_writes_a_private_protected_identity_and_prints_recipient(
    tmp_path: Path, passphrase_file: Path
) -> None:
    path = tmp_path / "reviewer.identity"
    done = ok(tiprelay("keygen", "-o", path, "--passphrase-file", passphrase_file,
                       "--work-factor", WORK_FACTOR))
    printed = done.stdout.decode()
    assert printed.count("\n") == 1 and printed.startswith("age1")
    recipient = X25519Recipient.parse(printed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert b"AGE-SECRET-KEY" not in data
    [identity] = load_identity_file(path, lambda: PASSPHRASE.encode())
    assert identity.recipient == recipient


def test_keygen_no_passphrase_writes_a_plain_private_identity(tmp_path: Path) -> None:
    path = tmp_path / "demo.identity"
    done = ok(tiprelay("keygen", "--no-passphrase", "-o", path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = next(line for line in path.read_text().splitlines() if line.startswith("AGE-"))
    assert str(X25519Identity.parse(secret).recipient) == done.stdout.decode().strip()


def test_keygen_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "reviewer.identity"
    path.write_text("the old identity\n")
    done = tiprelay("keygen", "--no-passphrase", "-o", path)
    assert done.returncode == 1
    assert b"already exists" in done.stderr
    assert done.stdout == b""
    assert path.read_text() == "the old identity\n"


def test_keygen_without_terminal_or_passphrase_file_fails_clearly_and_writes_nothing(
    tmp_path: Path,
) -> None:
    done = tiprelay("keygen", "-o", tmp_path / "reviewer.identity")
    assert done.returncode == 1
    message = done.stderr.decode()
    assert "no terminal" in message and "--passphrase-file" in message
    assert "Traceback" not in message
    assert listing(tmp_path) == []


def test_keygen_rejects_contradicting_options(tmp_path: Path, passphrase_file: Path) -> None:
    done = tiprelay("keygen", "--no-passphrase", "--passphrase-file", passphrase_file,
                    "-o", tmp_path / "x.identity")
    assert done.returncode == 1
    assert b"contradict" in done.stderr
    assert not (tmp_path / "x.identity").exists()


def test_keygen_refuses_an_empty_passphrase_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    done = tiprelay("keygen", "--passphrase-file", empty, "-o", tmp_path / "x.identity")
    assert done.returncode == 1
    assert b"empty" in done.stderr
    assert not (tmp_path / "x.identity").exists()


def test_keygen_asks_twice_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "reviewer.identity"
    done = run_on_tty(
        [TIPRELAY, "keygen", "-o", path, "--work-factor", WORK_FACTOR],
        answers=[(b"Passphrase for the new identity", PASSPHRASE.encode()),
                 (b"Repeat the passphrase", PASSPHRASE.encode())],
    )
    assert done.returncode == 0, done.stderr.decode()
    assert PASSPHRASE.encode() not in done.terminal  # not echoed
    [identity] = load_identity_file(path, lambda: PASSPHRASE.encode())
    assert str(identity.recipient) == done.stdout.decode().strip()


def test_keygen_on_a_terminal_refuses_differing_or_short_passphrases(tmp_path: Path) -> None:
    path = tmp_path / "reviewer.identity"
    differing = run_on_tty(
        [TIPRELAY, "keygen", "-o", path, "--work-factor", WORK_FACTOR],
        answers=[(b"Passphrase for the new identity", PASSPHRASE.encode()),
                 (b"Repeat the passphrase", b"something else entirely")],
    )
    assert differing.returncode == 1
    assert b"differ" in differing.stderr
    short = run_on_tty(
        [TIPRELAY, "keygen", "-o", path, "--work-factor", WORK_FACTOR],
        answers=[(b"Passphrase for the new identity", b"short")],
    )
    assert short.returncode == 1
    assert b"too short" in short.stderr
    assert listing(tmp_path) == []


# --- encrypt and decrypt round trips ------------------------------------------------------


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_encrypt_and_decrypt_through_stdin_and_stdout(
    reviewer: tuple[Path, str], armor: bool
) -> None:
    identity_path, recipient = reviewer
    plaintext = os.urandom(2 * CHUNK + 3)
    encrypted = ok(tiprelay("encrypt", "-r", recipient, *(["-a"] if armor else []),
                            stdin=plaintext))
    assert encrypted.stdout.startswith(b"-----BEGIN" if armor else b"age-encryption.org/v1\n")
    decrypted = ok(tiprelay("decrypt", "-i", identity_path, stdin=encrypted.stdout))
    assert decrypted.stdout == plaintext
    assert decrypted.stderr == b""


def test_encrypt_and_decrypt_between_files(reviewer: tuple[Path, str], tmp_path: Path) -> None:
    identity_path, recipient = reviewer
    work = tmp_path / "work"
    work.mkdir()
    (work / "tip.txt").write_bytes(b"the minister's emails\n" * 5000)
    ok(tiprelay("encrypt", "-r", recipient, "-o", "tip.txt.age", "tip.txt", cwd=work))
    ok(tiprelay("decrypt", "-i", identity_path, "-o", "back.txt", "tip.txt.age", cwd=work))
    assert (work / "back.txt").read_bytes() == (work / "tip.txt").read_bytes()
    assert stat.S_IMODE((work / "back.txt").stat().st_mode) == 0o600  # plaintext stays private
    assert listing(work) == ["back.txt", "tip.txt", "tip.txt.age"]


def test_recipients_file_encrypts_to_everyone_listed(tmp_path: Path) -> None:
    identities = [X25519Identity.generate() for _ in range(3)]
    listed = tmp_path / "reviewers.txt"
    listed.write_text(
        "# reviewers of the desk\n\n"
        f"{identities[0].recipient}\n  {identities[1].recipient}  \n# gone: someone\n"
    )
    encrypted = ok(tiprelay("encrypt", "-R", listed, "-r", str(identities[2].recipient),
                            stdin=b"tip"))
    for identity in identities:
        assert decrypt_bytes(encrypted.stdout, [identity]) == b"tip"
    assert encrypted.stdout.count(b"\n-> X25519 ") == 3


def test_bad_recipients_file_is_refused_with_its_line_number(tmp_path: Path) -> None:
    listed = tmp_path / "reviewers.txt"
    listed.write_text(f"# desk\n{X25519Identity.generate().recipient}\nage1typo\n")
    done = tiprelay("encrypt", "-R", listed, "-o", tmp_path / "out.age", stdin=b"tip")
    assert done.returncode == 1
    assert f"Line 3 of {listed}".encode() in done.stderr
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not a recipients file")
    done = tiprelay("encrypt", "-R", binary, stdin=b"tip")
    assert done.returncode == 1
    assert b"is not text" in done.stderr and b"Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["photo.jpg", "reviewers.txt"]


def test_encrypt_with_a_secret_key_as_recipient_is_refused_with_a_hint() -> None:
    done = tiprelay("encrypt", "-r", str(X25519Identity.generate()), stdin=b"tip")
    assert done.returncode == 1
    assert b"secret key" in done.stderr
    assert done.stdout == b""


def test_encrypt_without_recipient_is_refused(tmp_path: Path) -> None:
    done = tiprelay("encrypt", "-o", tmp_path / "out.age", stdin=b"tip")
    assert done.returncode == 1
    assert b"No recipient" in done.stderr
    assert listing(tmp_path) == []


def test_encrypt_refuses_binary_output_to_a_terminal_but_writes_armor(
    reviewer: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = reviewer
    source = tmp_path / "tip.txt"
    source.write_bytes(b"tip")
    refused = run_on_tty([TIPRELAY, "encrypt", "-r", recipient, source], stdout_to_tty=True)
    assert refused.returncode == 1
    assert b"terminal" in refused.stderr
    assert b"age-encryption.org" not in refused.terminal
    armored = run_on_tty([TIPRELAY, "encrypt", "-a", "-r", recipient, source],
                         stdout_to_tty=True)
    assert armored.returncode == 0, armored.stderr.decode()
    assert b"-----BEGIN AGE ENCRYPTED FILE-----" in armored.terminal


def test_decrypt_asks_the_identity_passphrase_on_the_terminal(
    tmp_path: Path, passphrase_file: Path
) -> None:
    identity_path = tmp_path / "reviewer.identity"
    recipient = ok(tiprelay("keygen", "-o", identity_path, "--passphrase-file", passphrase_file,
                            "--work-factor", WORK_FACTOR)).stdout.decode().strip()
    message = tmp_path / "tip.age"
    ok(tiprelay("encrypt", "-r", recipient, "-o", message, stdin=b"the tip"))
    asked = run_on_tty([TIPRELAY, "decrypt", "-i", identity_path, message],
                       answers=[(b"Passphrase for the identity file", PASSPHRASE.encode())])
    assert asked.returncode == 0, asked.stderr.decode()
    assert asked.stdout == b"the tip"
    wrong = run_on_tty([TIPRELAY, "decrypt", "-i", identity_path, message],
                       answers=[(b"Passphrase for the identity file", b"wrong words")])
    assert wrong.returncode == 1
    assert b"Wrong passphrase" in wrong.stderr
    assert wrong.stdout == b""
    from_file = ok(tiprelay("decrypt", "-i", identity_path, "--passphrase-file",
                            passphrase_file, message))
    assert from_file.stdout == b"the tip"


# --- decryption failures: clear messages, exit 1, nothing left behind ---------------------


@pytest.fixture
def three_chunk_file(reviewer: tuple[Path, str], tmp_path: Path) -> tuple[Path, bytes]:
    _, recipient = reviewer
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    plaintext = os.urandom(2 * CHUNK + 100)
    path = inbox / "tip.age"
    ok(tiprelay("encrypt", "-r", recipient, "-o", path, stdin=plaintext))
    return path, plaintext


def test_wrong_identity_says_so_and_leaves_no_output_file(
    three_chunk_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = three_chunk_file
    stranger = tmp_path / "stranger.identity"
    ok(tiprelay("keygen", "--no-passphrase", "-o", stranger))
    done = tiprelay("decrypt", "-i", stranger, "-o", path.parent / "tip.txt", path)
    assert done.returncode == 1
    message = done.stderr.decode()
    assert "not encrypted to this identity" in message
    assert "hint:" in message and "Traceback" not in message
    assert listing(path.parent) == ["tip.age"]
    piped = tiprelay("decrypt", "-i", stranger, stdin=path.read_bytes())
    assert piped.returncode == 1 and piped.stdout == b""


def _cut_point(data: bytes, where: str) -> int:
    header = data.index(b"\n", data.index(b"\n---") + 1) + 1
    payload = header + 16  # after the payload nonce
    return {
        "in-version-line": 10,
        "in-header": header // 2,
        "in-nonce": header + 8,
        "mid-chunk": payload + SEALED + 5,
        "chunk-boundary": payload + 2 * SEALED,
        "last-byte": len(data) - 1,
    }[where]


@pytest.mark.parametrize(
    "where", ["in-version-line", "in-header", "in-nonce", "mid-chunk", "chunk-boundary",
              "last-byte"]
)
def test_truncated_file_fails_and_leaves_no_output_file(
    reviewer: tuple[Path, str], three_chunk_file: tuple[Path, bytes], where: str
) -> None:
    identity_path, _ = reviewer
    path, _ = three_chunk_file
    data = path.read_bytes()
    path.write_bytes(data[: _cut_point(data, where)])
    done = tiprelay("decrypt", "-i", identity_path, "-o", path.parent / "tip.txt", path)
    assert done.returncode == 1
    message = done.stderr.decode()
    expected = "not an age file" if where == "in-version-line" else "truncated"
    assert expected in message, message
    assert "Traceback" not in message
    assert listing(path.parent) == ["tip.age"]


def test_damaged_chunk_is_named_and_no_output_file_is_left(
    reviewer: tuple[Path, str], three_chunk_file: tuple[Path, bytes]
) -> None:
    identity_path, _ = reviewer
    path, _ = three_chunk_file
    data = bytearray(path.read_bytes())
    data[-50] ^= 0x01  # inside the third (last) chunk: two good chunks come first
    path.write_bytes(bytes(data))
    done = tiprelay("decrypt", "-i", identity_path, "-o", path.parent / "tip.txt", path)
    assert done.returncode == 1
    assert "damaged or truncated (chunk 2)" in done.stderr.decode()
    assert listing(path.parent) == ["tip.age"]


def test_existing_output_survives_a_failed_decrypt(
    reviewer: tuple[Path, str], three_chunk_file: tuple[Path, bytes]
) -> None:
    identity_path, _ = reviewer
    path, _ = three_chunk_file
    data = bytearray(path.read_bytes())
    data[-50] ^= 0x01
    path.write_bytes(bytes(data))
    previous = path.parent / "tip.txt"
    previous.write_bytes(b"an earlier, complete decryption")
    done = tiprelay("decrypt", "-i", identity_path, "-o", previous, path)
    assert done.returncode == 1
    assert previous.read_bytes() == b"an earlier, complete decryption"
    assert listing(path.parent) == ["tip.age", "tip.txt"]


def test_not_an_age_file_is_named_as_such(reviewer: tuple[Path, str], tmp_path: Path) -> None:
    identity_path, _ = reviewer
    done = tiprelay("decrypt", "-i", identity_path, stdin=b"%PDF-1.7 not encrypted\n")
    assert done.returncode == 1
    assert b"not an age file" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_interrupted_encrypt_leaves_no_partial_file(
    reviewer: tuple[Path, str], tmp_path: Path, sig: signal.Signals
) -> None:
    _, recipient = reviewer
    out = tmp_path / "out"
    out.mkdir()
    # spawned(): SIGINT & co. at their defaults in the child even when this suite was
    # started with them ignored (nohup, `cmd &`), and the child killed if the test fails.
    with spawned([TIPRELAY, "encrypt", "-r", recipient, "-o", out / "tip.age"],
                 stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
                 start_new_session=True) as process:
        assert process.stdin is not None
        process.stdin.write(os.urandom(3 * CHUNK))
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while not listing(out) and time.monotonic() < deadline:  # the temporary file exists
            time.sleep(0.02)
        assert listing(out), "encrypt never started writing"
        time.sleep(0.2)
        process.send_signal(sig)
        returncode = process.wait(timeout=30)
    assert returncode != 0
    assert listing(out) == []


# --- memory does not grow with the file ---------------------------------------------------

_MEASURE = (
    "import resource, subprocess, sys\n"
    "with open(sys.argv[1], 'rb') as src, open(sys.argv[2], 'wb') as dst:\n"
    "    subprocess.run(sys.argv[3:], stdin=src, stdout=dst, check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _peak_rss_kib(argv: list[str], stdin: Path, stdout: Path) -> int:
    """Peak resident memory of one fresh tiprelay process, in KiB."""
    done = run(
        [sys.executable, "-c", _MEASURE, str(stdin), str(stdout), *argv],
        capture_output=True, text=True, check=True, timeout=300,
    )
    return int(done.stdout)


KIB, MIB = 1024, 1024 * 1024
SIZES = (10 * KIB, 10 * MIB, 40 * MIB)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(
    reviewer: tuple[Path, str], tmp_path: Path
) -> None:
    identity_path, recipient = reviewer
    peaks: dict[str, dict[int, int]] = {"encrypt": {}, "decrypt": {}}
    for size in SIZES:
        plain = tmp_path / f"plain.{size}"
        plain.write_bytes(os.urandom(size))
        sealed = tmp_path / f"sealed.{size}"
        back = tmp_path / f"back.{size}"
        peaks["encrypt"][size] = _peak_rss_kib([TIPRELAY, "encrypt", "-r", recipient],
                                               plain, sealed)
        peaks["decrypt"][size] = _peak_rss_kib(
            [TIPRELAY, "decrypt", "-i", str(identity_path), "-o", str(back), str(sealed)],
            Path(os.devnull), Path(os.devnull),
        )
        assert back.read_bytes() == plain.read_bytes()
        for path in (plain, sealed, back):
            path.unlink()
    print(f"\npeak RSS in KiB by file size {SIZES}: {peaks}")
    # The whole-file path works in a fixed set of block buffers (three input,
    # two output) whose pages are touched only as far as a file reaches: a
    # 10 KiB file never touches them all, a 10 MiB file does.
    fixed_buffers_kib = 5 * stream.BLOCK_CHUNKS * stream.SEALED_CHUNK_SIZE // KIB
    for command, peak in peaks.items():
        small, medium, large = (peak[size] for size in SIZES)
        # Holding the file, or anything proportional to it, would add >= 30 MiB here.
        assert large - medium < 10 * KIB, (command, peak)
        assert medium - small < fixed_buffers_kib + 4 * KIB, (command, peak)
        assert large < 64 * KIB, (command, peak)  # the ceiling for any size


# --- every command documents an example -------------------------------------------------


def _command_paths(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``path`` and, for a group, every subcommand's path below it."""
    found = [path]
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            found += _command_paths(sub, (*path, name))
    return found


def test_the_offline_commands_are_all_listed() -> None:
    assert {"keygen", "encrypt", "decrypt"} <= set(COMMANDS)


# Top-level names come from the registry without importing any command module,
# so one command's import error cannot hide the others' results.
@pytest.mark.parametrize("name", ["", *sorted(COMMANDS)], ids=["tiprelay", *sorted(COMMANDS)])
def test_every_command_help_shows_an_example(name: str) -> None:
    context = click.Context(cli_main)
    command = cli_main.get_command(context, name) if name else cli_main
    assert command is not None, name
    for path in _command_paths(command, (name,) if name else ()):
        done = ok(tiprelay(*path, "--help"))
        text = done.stdout.decode()
        assert "Example" in text, (path, text)
        example = text[text.index("Example") :]
        assert "tiprelay" in example, (path, text)  # a command line, not just a heading
