"""age-plugin-tiprelay: stock `age` and the reviewer's gpg alone open our files.

With the real /usr/bin/age (Debian's 1.1.1) and a real gpg home: a file sealed
to one age reviewer and one OpenPGP reviewer opens with `age -d -i` and the
plugin's identity file, and with the age identity, to the same plaintext. A
wrong passphrase, a file for another key, a malformed or oversized stanza each
end in a message age shows. The protocol itself (grease, file indices, error
variants, the bounds on what a hostile header may make the plugin read) is
checked over in-memory pipes with a stand-in for gpg.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from relay.crypto import age_plugin, bech32, plugin_ipc
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.errors import KeyFormatError
from relay.crypto.format import Stanza, encode_stanza
from relay.crypto.identities import X25519Identity
from relay.crypto.openpgp_gpg import GpgWrongPassphraseError
from relay.crypto.openpgp_keys import inspect_public_key
from relay.crypto.openpgp_recipient import STANZA_TYPE, OpenPGPRecipient, PublicKeyring
from relay.crypto.recipients import Recipient
from tests import support_openpgp
from tests.support_openpgp import FixedStanza, GpgReviewer, make_gpg_reviewer, remove_gpg_home
from tests.support_process import run
from tests.support_pty import run_on_tty

AGE = "/usr/bin/age"
PINENTRY_CURSES = "/usr/bin/pinentry-curses"
VENV_BIN = Path(sys.executable).parent
PLUGIN = str(VENV_BIN / "age-plugin-tiprelay")
PLAINTEXT = b"evidence for the OpenPGP reviewer\n" * 100


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    with support_openpgp.gpg_reviewer_home() as reviewer:
        yield reviewer


# --- with the real age and gpg -------------------------------------------------------


@dataclass
class Sealed:
    """A file for one age identity and one OpenPGP key, and the files to open it."""

    path: Path
    age_identity: Path
    plugin_identity: Path


def seal(
    data: bytes, reviewer: GpgReviewer, folder: Path, *, extra: Sequence[Recipient] = ()
) -> Sealed:
    """Seal ``data`` as the relay does, and make both reviewers' identity files."""
    age_identity = X25519Identity.generate()
    key = inspect_public_key(reviewer.public_key, "k")
    keyring = PublicKeyring.temporary([key])
    try:
        recipients = [age_identity.recipient, OpenPGPRecipient(key, keyring), *extra]
        sealed = encrypt_bytes(data, recipients)
    finally:
        keyring.close()
    (folder / "file.age").write_bytes(sealed)
    (folder / "age.key").write_text(f"{age_identity}\n")
    made = plugin(reviewer, "--identity", reviewer.fingerprint)
    assert made.returncode == 0, made.stderr.decode()
    (folder / "plugin.txt").write_bytes(made.stdout)
    return Sealed(folder / "file.age", folder / "age.key", folder / "plugin.txt")


def environment(reviewer: GpgReviewer) -> dict[str, str]:
    """age finds the plugin on PATH; gpg uses the reviewer's home (loopback pinentry)."""
    env = reviewer.environment(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("GPG_TTY", None)
    env.pop("AGEDEBUG", None)
    return env


def plugin(
    reviewer: GpgReviewer, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """age-plugin-tiprelay run directly, as a person (or a hostile client) would."""
    return run(
        [PLUGIN, *args], input=stdin, env=environment(reviewer), capture_output=True,
        start_new_session=True, timeout=60, check=False,
    )


def age(reviewer: GpgReviewer, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Stock age, without a terminal (pinentry answers from the home's gpg.conf)."""
    return run(
        [AGE, *args], env=environment(reviewer), capture_output=True,
        start_new_session=True, timeout=120, check=False, cwd="/",
    )


def test_stock_age_opens_a_file_for_an_openpgp_reviewer_through_the_plugin(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    with_plugin = age(gpg_reviewer, "-d", "-i", sealed.plugin_identity, sealed.path)
    assert with_plugin.returncode == 0, with_plugin.stderr.decode()
    with_age_key = age(gpg_reviewer, "-d", "-i", sealed.age_identity, sealed.path)
    assert with_age_key.returncode == 0, with_age_key.stderr.decode()
    assert with_plugin.stdout == with_age_key.stdout == PLAINTEXT


def test_the_identity_file_holds_no_secret_and_names_the_key(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    text = seal(b"x", gpg_reviewer, tmp_path).plugin_identity.read_text()
    lines = text.splitlines()
    assert lines[0].startswith(f"# tiprelay OpenPGP identity for key {gpg_reviewer.fingerprint}")
    identity = age_plugin.decode_identity(lines[-1])
    assert identity.fingerprint == gpg_reviewer.fingerprint
    assert identity.gpg_home is None  # GNUPGHOME decides, as for gpg itself
    assert "PRIVATE" not in text and "SECRET" not in text


def test_a_data_less_plugin_identity_tries_every_key_in_the_reviewers_gpg(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    done = age(gpg_reviewer, "-d", "-j", "tiprelay", sealed.path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == PLAINTEXT


def test_a_gpg_home_recorded_in_the_identity_is_used(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    made = plugin(gpg_reviewer, "--identity", gpg_reviewer.fingerprint,
                  "--gpg-home", str(gpg_reviewer.home))
    assert made.returncode == 0, made.stderr.decode()
    identity = tmp_path / "with-home.txt"
    identity.write_bytes(made.stdout)
    env = environment(gpg_reviewer)
    env["GNUPGHOME"] = str(tmp_path / "no-such-home")
    done = run([AGE, "-d", "-i", identity, sealed.path], env=env, capture_output=True,
               start_new_session=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == PLAINTEXT


@pytest.mark.skipif(not Path(PINENTRY_CURSES).exists(), reason="needs pinentry-curses")
def test_gpg_agents_pinentry_asks_on_the_reviewers_terminal_not_on_ages_pipes(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    # As on a reviewer's machine: no loopback, the agent starts pinentry-curses,
    # which must find the terminal age runs on although the plugin's stdin and
    # stdout are age's pipes and GPG_TTY is unset.
    (gpg_reviewer.home / "gpg.conf").write_text("")
    (gpg_reviewer.home / "gpg-agent.conf").write_text(f"pinentry-program {PINENTRY_CURSES}\n")
    run(["gpgconf", "--homedir", gpg_reviewer.home, "--kill", "gpg-agent"],
        capture_output=True, check=False)
    env = {**environment(gpg_reviewer), "TERM": "xterm"}
    typed = (b"Passphrase:", gpg_reviewer.passphrase.encode() + b"\r")  # curses: Enter is CR
    done = run_on_tty([AGE, "-d", "-i", sealed.plugin_identity, sealed.path],
                      answers=[typed], env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == PLAINTEXT
    assert b"Please enter the passphrase" in done.terminal


def test_gpg_missing_is_said_plainly(gpg_reviewer: GpgReviewer, tmp_path: Path) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    env = {**environment(gpg_reviewer), "PATH": str(VENV_BIN)}  # the plugin, but no gpg
    done = run([AGE, "-d", "-i", sealed.plugin_identity, sealed.path], env=env,
               capture_output=True, start_new_session=True, check=False)
    assert done.returncode != 0
    assert "tiprelay plugin: gpg cannot be run: is GnuPG installed?" in done.stderr.decode()


def test_a_wrong_passphrase_fails_with_the_plugins_message(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path)
    gpg_reviewer.set_passphrase_answer("wrong")
    run(["gpgconf", "--homedir", gpg_reviewer.home, "--kill", "gpg-agent"],
        capture_output=True, check=False)
    done = age(gpg_reviewer, "-d", "-i", sealed.plugin_identity, sealed.path)
    assert done.returncode != 0
    assert done.stdout == b""
    assert (
        f"tiprelay plugin: Wrong passphrase for OpenPGP key {gpg_reviewer.fingerprint}."
        in done.stderr.decode()
    )


def test_a_file_for_another_openpgp_key_is_no_match_for_age(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    other = make_gpg_reviewer("boris")
    try:
        sealed_for_other = seal(PLAINTEXT, other, tmp_path)
    finally:
        remove_gpg_home(other.home)
    made = plugin(gpg_reviewer, "--identity", gpg_reviewer.fingerprint)
    mine = tmp_path / "mine.txt"
    mine.write_bytes(made.stdout)
    done = age(gpg_reviewer, "-d", "-i", mine, sealed_for_other.path)
    assert done.returncode != 0
    assert "no identity matched any of the recipients" in done.stderr.decode()
    # No gpg was asked: nothing was for this key.
    assert "opening the file key" not in done.stderr.decode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"\x01not an OpenPGP message", "OpenPGP", id="garbage"),
        pytest.param(bytes(5000), "oversized body", id="oversized"),
    ],
)
def test_a_malformed_openpgp_stanza_fails_with_a_message(
    gpg_reviewer: GpgReviewer, tmp_path: Path, body: bytes, expected: str
) -> None:
    bad = FixedStanza(Stanza(STANZA_TYPE, (gpg_reviewer.fingerprint,), body))
    sealed = seal(PLAINTEXT, gpg_reviewer, tmp_path, extra=(bad,))
    # The file would open (its good stanza is there), but a malformed stanza of
    # a known type means a damaged header: the spec says refuse the file.
    done = age(gpg_reviewer, "-d", "-i", sealed.plugin_identity, sealed.path)
    assert done.returncode != 0
    assert "tiprelay plugin:" in done.stderr.decode()
    assert expected in done.stderr.decode()


def test_stock_age_cannot_encrypt_with_the_plugin_and_says_why(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    sealed = seal(b"x", gpg_reviewer, tmp_path)
    done = run([AGE, "-e", "-i", sealed.plugin_identity, "-o", tmp_path / "out.age"],
               input=b"secret", env=environment(gpg_reviewer), capture_output=True,
               start_new_session=True, check=False)
    assert done.returncode != 0
    assert "the tiprelay plugin only decrypts" in done.stderr.decode()


def test_an_identity_for_a_key_gpg_does_not_hold_is_refused(gpg_reviewer: GpgReviewer) -> None:
    done = plugin(gpg_reviewer, "--identity", "0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567")
    assert done.returncode == 1
    assert "holds no secret key 0123456789ABCDEF0123456789ABCDEF01234567" in done.stderr.decode()
    assert done.stdout == b""


def test_a_hostile_client_cannot_make_the_plugin_read_without_bound(
    gpg_reviewer: GpgReviewer,
) -> None:
    endless_line = b"-> add-identity " + b"A" * (8 * 1024 * 1024)
    started = time.monotonic()
    done = plugin(gpg_reviewer, "--age-plugin=identity-v1", stdin=endless_line)
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    replies = read_all(done.stdout)
    assert replies[0].type == "error"
    assert replies[0].args == ("internal",)
    assert b"line that is too long" in replies[0].body


# --- the protocol, over in-memory pipes ------------------------------------------------

FINGERPRINT = "A" * 40
OTHER = "B" * 40
FILE_KEY = bytes(range(16))


@dataclass
class FakeGpg:
    """Stands in for GpgIdentity: opens stanzas whose body it knows."""

    fingerprints: frozenset[str] = frozenset({FINGERPRINT})
    keys: dict[bytes, bytes] = field(default_factory=dict)
    fail_with: Exception | None = None
    opened: list[bytes] = field(default_factory=list)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        self.opened.append(stanza.body)
        if self.fail_with is not None:
            raise self.fail_with
        return self.keys.get(stanza.body)


@pytest.fixture(scope="module")
def valid_message() -> Iterator[bytes]:
    """A real OpenPGP message of a file key: what our packet reader accepts."""
    reviewer = make_gpg_reviewer("vera")
    try:
        key = inspect_public_key(reviewer.public_key, "k")
        keyring = PublicKeyring.temporary([key])
        try:
            yield keyring.encrypt_file_key(key.fingerprint, FILE_KEY)
        finally:
            keyring.close()
    finally:
        remove_gpg_home(reviewer.home)


def command(kind: str, *args: str, body: bytes = b"") -> bytes:
    return encode_stanza(Stanza(kind, args, body))


def recipient_stanza(file_index: int, stanza: Stanza) -> bytes:
    return command("recipient-stanza", str(file_index), stanza.type, *stanza.args, body=stanza.body)


def read_all(data: bytes) -> list[Stanza]:
    channel = plugin_ipc.StanzaChannel(io.BytesIO(data), io.BytesIO())
    out = []
    while True:
        try:
            out.append(channel.read())
        except plugin_ipc.ClientGoneError:
            return out


def serve(phase_one: bytes, gpg: FakeGpg) -> list[Stanza]:
    """Run identity-v1 with age answering `ok` to everything; what the plugin sent."""
    answers = command("ok") * 50
    output = io.BytesIO()
    channel = plugin_ipc.StanzaChannel(io.BytesIO(phase_one + command("done") + answers), output)
    age_plugin.serve_identity_v1(channel, lambda home: gpg)
    return read_all(output.getvalue())


def identity(fingerprint: str | None = FINGERPRINT) -> bytes:
    return command("add-identity", str(age_plugin.PluginIdentity(fingerprint)))


def ours(message: bytes, fingerprint: str = FINGERPRINT) -> Stanza:
    return Stanza(STANZA_TYPE, (fingerprint,), message)


def test_the_file_key_of_our_stanza_is_sent_and_unknown_commands_are_ignored(
    valid_message: bytes,
) -> None:
    gpg = FakeGpg(keys={valid_message: FILE_KEY})
    sent = serve(
        command("grease-x", "a", "b", body=b"junk")
        + identity()
        + recipient_stanza(0, Stanza("X25519", ("c2hhcmU",), bytes(32)))
        + recipient_stanza(0, Stanza("some-plugin", (), b""))
        + recipient_stanza(0, ours(valid_message))
        + command("grease-y"),
        gpg,
    )
    assert [s.type for s in sent] == ["msg", "file-key", "done"]
    assert sent[1].args == ("0",)
    assert sent[1].body == FILE_KEY


def test_each_file_gets_its_own_key_and_other_keys_stanzas_are_not_tried(
    valid_message: bytes,
) -> None:
    gpg = FakeGpg(fingerprints=frozenset({FINGERPRINT, OTHER}), keys={valid_message: FILE_KEY})
    sent = serve(
        identity()
        + recipient_stanza(0, ours(valid_message, OTHER))
        + recipient_stanza(1, ours(valid_message, OTHER))
        + recipient_stanza(1, ours(valid_message)),
        gpg,
    )
    assert [(s.type, s.args) for s in sent if s.type != "msg"] == [
        ("file-key", ("1",)), ("done", ())
    ]
    assert len(gpg.opened) == 1


def test_an_invalid_identity_stops_all_unwrapping(valid_message: bytes) -> None:
    gpg = FakeGpg(keys={valid_message: FILE_KEY})
    sent = serve(
        identity() + command("add-identity", "AGE-PLUGIN-YUBIKEY-1QQQQQQQQ")
        + recipient_stanza(0, ours(valid_message)),
        gpg,
    )
    assert [(s.type, s.args) for s in sent] == [("error", ("identity", "1")), ("done", ())]
    assert gpg.opened == []


def test_a_malformed_stanza_is_an_error_for_that_file_only(valid_message: bytes) -> None:
    gpg = FakeGpg(keys={valid_message: FILE_KEY})
    sent = serve(
        identity()
        + recipient_stanza(0, ours(valid_message))
        + recipient_stanza(0, Stanza(STANZA_TYPE, ("not-a-fingerprint",), valid_message))
        + recipient_stanza(1, ours(valid_message)),
        gpg,
    )
    assert [(s.type, s.args) for s in sent if s.type != "msg"] == [
        ("error", ("stanza", "0", "1")), ("file-key", ("1",)), ("done", ())
    ]
    assert b"40-digit" in sent[0].body


def test_a_gpg_failure_is_an_identity_error_and_that_identity_is_not_retried(
    valid_message: bytes,
) -> None:
    wrong = GpgWrongPassphraseError(f"Wrong passphrase for OpenPGP key {FINGERPRINT}.")
    gpg = FakeGpg(fail_with=wrong)
    sent = serve(
        identity()
        + recipient_stanza(0, ours(valid_message))
        + recipient_stanza(1, ours(valid_message)),
        gpg,
    )
    errors = [s for s in sent if s.type == "error"]
    assert [(s.args, s.body) for s in errors] == [
        (("identity", "0"), f"Wrong passphrase for OpenPGP key {FINGERPRINT}.".encode())
    ]
    assert len(gpg.opened) == 1


def test_a_named_key_missing_from_gpg_is_said_plainly(valid_message: bytes) -> None:
    no_keys = FakeGpg(fingerprints=frozenset())
    sent = serve(identity() + recipient_stanza(0, ours(valid_message)), no_keys)
    assert sent[0].type == "error"
    assert b"holds no secret key for it" in sent[0].body


def test_an_any_key_identity_skips_keys_gpg_does_not_hold(valid_message: bytes) -> None:
    gpg = FakeGpg(keys={valid_message: FILE_KEY})
    sent = serve(
        identity(None)
        + recipient_stanza(0, ours(valid_message, OTHER))
        + recipient_stanza(0, ours(valid_message)),
        gpg,
    )
    assert [(s.type, s.args) for s in sent if s.type != "msg"] == [
        ("file-key", ("0",)), ("done", ())
    ]


def test_recipient_v1_is_refused_with_a_message() -> None:
    output = io.BytesIO()
    phase = command("add-recipient", "age1tiprelay1xyz") + command("wrap-file-key", body=FILE_KEY)
    channel = plugin_ipc.StanzaChannel(io.BytesIO(phase + command("done") + command("ok")), output)
    age_plugin.serve_recipient_v1(channel)
    sent = read_all(output.getvalue())
    assert [(s.type, s.args) for s in sent] == [("error", ("internal",)), ("done", ())]
    assert b"only decrypts" in sent[0].body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"-> x " + b"a" * 5000 + b"\n\n", "too long", id="long-line"),
        pytest.param(b"-> x\n" + b"QUFB" * 16 * 1100 + b"\n", "too long", id="long-body-line"),
        pytest.param(b"-> x\n" + (b"A" * 64 + b"\n") * 1400 + b"\n", "too large", id="huge-body"),
        pytest.param(b"hello\n", "starts no stanza", id="not-a-stanza"),
        pytest.param(b"-> x  y\n\n", "invalid argument", id="empty-argument"),
        pytest.param(b"-> x\n!!!!\n", "not base64", id="bad-base64"),
    ],
)
def test_the_channel_refuses_what_is_malformed_or_too_large(data: bytes, message: str) -> None:
    channel = plugin_ipc.StanzaChannel(io.BytesIO(data), io.BytesIO())
    with pytest.raises(plugin_ipc.PluginProtocolError, match=message):
        channel.read()


def test_a_session_has_a_bounded_number_of_bytes() -> None:
    just_under_the_body_cap = b"-> x\n" + (b"A" * 64 + b"\n") * 1000 + b"\n"
    data = just_under_the_body_cap * 20 + command("done")
    channel = plugin_ipc.StanzaChannel(io.BytesIO(data), io.BytesIO())
    with pytest.raises(plugin_ipc.PluginProtocolError, match="more than the plugin accepts"):
        channel.read_phase()


def test_a_phase_has_a_bounded_number_of_stanzas() -> None:
    data = command("grease") * (plugin_ipc.MAX_PHASE_STANZAS + 1) + command("done")
    channel = plugin_ipc.StanzaChannel(io.BytesIO(data), io.BytesIO())
    with pytest.raises(plugin_ipc.PluginProtocolError, match="too many stanzas"):
        channel.read_phase()


def test_file_indices_must_not_go_backwards(valid_message: bytes) -> None:
    with pytest.raises(plugin_ipc.PluginProtocolError, match="backwards"):
        serve(
            identity() + recipient_stanza(1, ours(valid_message))
            + recipient_stanza(0, ours(valid_message)),
            FakeGpg(),
        )


def test_identities_round_trip_and_foreign_ones_are_refused(tmp_path: Path) -> None:
    with_home = age_plugin.PluginIdentity(FINGERPRINT, tmp_path / "gnupg")
    any_key = age_plugin.PluginIdentity(None)
    for each in (age_plugin.PluginIdentity(FINGERPRINT), with_home, any_key):
        text = str(each)
        assert text.startswith("AGE-PLUGIN-TIPRELAY-1")
        assert age_plugin.decode_identity(text) == each
    newer = bech32.encode(age_plugin.IDENTITY_HRP, bytes([2]) + bytes(20)).upper()
    with pytest.raises(KeyFormatError, match="version 2"):
        age_plugin.decode_identity(newer)
    with pytest.raises(KeyFormatError, match="upper case"):
        age_plugin.decode_identity(str(with_home).lower())
    with pytest.raises(KeyFormatError, match="not a tiprelay plugin identity"):
        age_plugin.decode_identity(str(X25519Identity.generate()))
