"""What ``tiprelay decrypt --gpg`` tells a reviewer when their gpg cannot open a stanza.

Real gpg homes (tests/support_openpgp.py), real gpg-agent, real scdaemon when
installed. There is no smartcard here, but the agent treats a key whose secret
part is a "shadowed" stub exactly as a key on a card: to decrypt, it asks
scdaemon for the card whose serial number the stub names. So an absent card is
made by replacing the encryption subkey's secret with such a stub, as
``gpg --card-edit`` / ``keytocard`` would have left it.

Each case checks the message the reviewer reads, exit status 1, and that no
plaintext was written.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.container import build_archive
from relay.crypto.decrypt import decrypt_bytes
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.format import Stanza, read_header
from relay.crypto.identities import X25519Identity
from relay.crypto.openpgp_gpg import GpgCardError, GpgWrongPassphraseError
from relay.crypto.openpgp_identity import GpgIdentity
from relay.crypto.openpgp_keys import inspect_public_key
from relay.crypto.openpgp_packets import MAX_MESSAGE_BYTES
from relay.crypto.openpgp_recipient import STANZA_TYPE, OpenPGPRecipient, PublicKeyring
from relay.manifest import SubmissionInfo, write_manifest
from tests.support_openpgp import (
    FixedStanza,
    GpgReviewer,
    gpg_reviewer_home,
    kill_agents,
    new_gpg_home,
    remove_gpg_home,
)
from tests.support_process import run
from tests.support_reviewer import TIPRELAY

DAY = "2026-03-04"
# An OpenPGP card's application id (D276000124 01, version 3.4, maker 0006,
# serial 12345678): what a stub moved to a card by keytocard names.
CARD_SERIAL = "D2760001240103040006123456780000"
CARD_KEY_SLOT = "OPENPGP.2"  # the card's decryption key


@pytest.fixture(scope="module")
def key_pair_home() -> Iterator[GpgReviewer]:
    """One reviewer's key pair, made once: making a key takes seconds on a busy machine."""
    with gpg_reviewer_home() as reviewer:
        kill_agents(reviewer.home)
        yield reviewer


@pytest.fixture
def gpg_reviewer(key_pair_home: GpgReviewer) -> Iterator[GpgReviewer]:
    """A copy of that home for one test, which may break it at will; agents killed after."""
    home = new_gpg_home()
    shutil.rmtree(home)
    shutil.copytree(key_pair_home.home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    conf = home / "gpg.conf"
    conf.write_text(conf.read_text().replace(str(key_pair_home.home), str(home)))
    try:
        yield GpgReviewer(home, key_pair_home.fingerprint, key_pair_home.public_key)
    finally:
        remove_gpg_home(home)


def tiprelay_decrypt(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(
        [TIPRELAY, "decrypt", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )


def failed_decrypt(tip: Path, env: dict[str, str], *options: str | Path) -> str:
    """``tiprelay decrypt --gpg`` on ``tip``: checks it failed with exit status 1 and
    wrote nothing; what it said."""
    out = tip.with_suffix(".tar")
    result = tiprelay_decrypt("--gpg", *options, "-o", out, tip, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not out.exists()
    assert result.stderr.startswith("tiprelay: error: "), result.stderr
    return result.stderr


def gpgs_own_words(reviewer: GpgReviewer) -> str:
    """What gpg itself says (in English) when it decrypts a message to the reviewer's key."""
    message = reviewer.gpg("--encrypt", "--trust-model", "always", "-r", reviewer.fingerprint,
                           input_bytes=b"sixteen bytes...")
    decrypted = run(["gpg", "--homedir", reviewer.home, "--batch", "--decrypt"],
                    input=message, capture_output=True, env=reviewer.environment(LC_ALL="C"))
    return decrypted.stderr.decode()


def sealed_for(reviewer: GpgReviewer, text: str) -> bytes:
    """A tip's archive encrypted to the reviewer's OpenPGP key and to an age key."""
    key = inspect_public_key(reviewer.public_key, "olga")
    keyring = PublicKeyring.temporary([key])
    try:
        return encrypt_bytes(
            build_archive(text, day=DAY, sealed_by="browser"),
            [OpenPGPRecipient(key, keyring), X25519Identity.generate().recipient],
        )
    finally:
        keyring.close()


def encryption_keygrip(reviewer: GpgReviewer) -> str:
    """The keygrip of the reviewer's encryption subkey (its secret's file name)."""
    listing = reviewer.gpg("--with-colons", "--with-keygrip", "--list-secret-keys").decode()
    in_encryption_subkey = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb"):
            in_encryption_subkey = fields[0] == "ssb" and "e" in fields[11]
        elif fields[0] == "grp" and in_encryption_subkey:
            return fields[9]
    raise AssertionError(f"no encryption subkey in {listing}")


def move_encryption_key_to_absent_card(reviewer: GpgReviewer) -> None:
    """Replace the encryption subkey's secret by a stub that names a card.

    The stub is what gpg-agent itself writes when a key goes to a card
    (agent/protect.c ``agent_shadow_key``): the key's public S-expression with
    ``public-key`` renamed ``shadowed-private-key`` and, inside the algorithm's
    list, ``(shadowed t1-v1 (<card serial> OPENPGP.2))``, in canonical form.
    """
    keygrip = encryption_keygrip(reviewer)
    public_file = reviewer.home / "encryption-key.sexp"
    read = run(
        ["gpg-connect-agent", "--homedir", reviewer.home,
         f"/datafile {public_file}", f"READKEY {keygrip}", "/bye"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    assert read.returncode == 0 and read.stdout.startswith("OK"), read.stdout + read.stderr
    public = public_file.read_bytes()
    prefix = b"(10:public-key"
    assert public.startswith(prefix + b"(") and public.endswith(b"))"), public
    serial = bytes.fromhex(CARD_SERIAL)
    slot = CARD_KEY_SLOT.encode()
    shadow_info = b"(%d:%s%d:%s)" % (len(serial), serial, len(slot), slot)
    stub = (b"(20:shadowed-private-key" + public[len(prefix):-2]
            + b"(8:shadowed5:t1-v1" + shadow_info + b")))")
    kill_agents(reviewer.home)  # the next gpg starts an agent that reads the stub
    (reviewer.home / "private-keys-v1.d" / f"{keygrip}.key").write_bytes(stub)
    listing = reviewer.gpg("--with-colons", "--list-secret-keys").decode()
    assert f":{CARD_SERIAL}:" in listing, listing  # gpg now says: this subkey is on a card


def add_agent_option(reviewer: GpgReviewer, line: str) -> None:
    """A line in gpg-agent.conf, read by the next agent (the running one is stopped)."""
    with (reviewer.home / "gpg-agent.conf").open("a") as conf:
        conf.write(line + "\n")
    kill_agents(reviewer.home)


def scdaemon_installed() -> bool:
    listing = run(["gpgconf", "--list-components"], capture_output=True, text=True).stdout
    return any(line.startswith("scdaemon:") and Path(line.split(":")[2]).exists()
               for line in listing.splitlines())


@pytest.mark.parametrize(
    "scdaemon",
    [
        pytest.param("installed", marks=pytest.mark.skipif(
            not scdaemon_installed(), reason="the scdaemon Debian package is not installed")),
        "missing",
    ],
)
def test_a_key_on_a_card_that_is_not_there_asks_for_the_card_and_writes_nothing(
    gpg_reviewer: GpgReviewer, tmp_path: Path, scdaemon: str
) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "on a card"))
    move_encryption_key_to_absent_card(gpg_reviewer)
    if scdaemon == "missing":
        # What the agent meets when the package is absent: no program to start.
        add_agent_option(gpg_reviewer, f"scdaemon-program {tmp_path / 'no-scdaemon-here'}")
    # Two different answers from gpg (error codes 112 and 119), one message from us.
    gpg_says = {"installed": "Card not present", "missing": "No SmartCard daemon"}[scdaemon]
    assert f"public key decryption failed: {gpg_says}" in gpgs_own_words(gpg_reviewer)

    said = failed_decrypt(tip, gpg_reviewer.environment())
    assert (f"error: The smartcard holding OpenPGP key {gpg_reviewer.fingerprint} is not "
            "present") in said
    assert "insert the card, check `gpg --card-status`" in said
    with pytest.raises(GpgCardError):
        decrypt_bytes(tip.read_bytes(), [GpgIdentity(gpg_reviewer.home)])


def test_a_failure_no_message_names_carries_gpgs_own_reason(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "scdaemon turned off"))
    move_encryption_key_to_absent_card(gpg_reviewer)
    add_agent_option(gpg_reviewer, "disable-scdaemon")  # the agent answers "Not supported"

    said = failed_decrypt(tip, gpg_reviewer.environment(LC_ALL="C.UTF-8"))
    assert (f"error: gpg could not open the OpenPGP stanza for key {gpg_reviewer.fingerprint}: "
            "Not supported.") in said


def test_a_wrong_passphrase_is_named_as_such(gpg_reviewer: GpgReviewer, tmp_path: Path) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "locked"))
    gpg_reviewer.set_passphrase_answer("incorrect horse")
    kill_agents(gpg_reviewer.home)  # the agent would remember the right one

    said = failed_decrypt(tip, gpg_reviewer.environment())
    assert f"error: Wrong passphrase for OpenPGP key {gpg_reviewer.fingerprint}." in said
    with pytest.raises(GpgWrongPassphraseError):
        decrypt_bytes(tip.read_bytes(), [GpgIdentity(gpg_reviewer.home)])


def test_without_a_working_pinentry_the_reviewer_is_told_to_install_one(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "no pinentry"))
    (gpg_reviewer.home / "gpg.conf").write_text("")  # no loopback: the agent asks a pinentry
    (gpg_reviewer.home / "gpg-agent.conf").write_text(
        f"pinentry-program {tmp_path / 'no-pinentry-here'}\n"
    )
    kill_agents(gpg_reviewer.home)

    said = failed_decrypt(tip, gpg_reviewer.environment())
    assert (f"gpg could not ask for the passphrase of OpenPGP key {gpg_reviewer.fingerprint}: "
            "no pinentry program works here") in said


def test_a_gpg_home_without_the_key_names_the_files_keys_and_its_own(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "for olga"))
    with gpg_reviewer_home("pavel") as other:
        said = failed_decrypt(tip, other.environment(), "--gpg-homedir", other.home)
    assert (f"No secret key in gpg home {other.home} matches the OpenPGP key(s) this file is "
            f"encrypted to: {gpg_reviewer.fingerprint}.") in said
    assert f"(Keys with a secret part here: {other.fingerprint}.)" in said


def test_without_gpg_on_the_path_the_reviewer_is_told_to_install_gnupg(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    tip = tmp_path / "tip.age"
    tip.write_bytes(sealed_for(gpg_reviewer, "no gpg"))
    empty = tmp_path / "bin"
    empty.mkdir()
    said = failed_decrypt(tip, gpg_reviewer.environment(PATH=str(empty)))
    assert ("error: gpg cannot be run: is GnuPG installed? On Debian: apt install gnupg."
            in said)


def write_bundle(bundle: Path, reviewer: GpgReviewer, count: int) -> list[SubmissionInfo]:
    bundle.mkdir()
    entries = []
    for number in range(1, count + 1):
        ciphertext = sealed_for(reviewer, f"tip {number}")
        info = SubmissionInfo(f"{number:032x}", DAY, len(ciphertext),
                              hashlib.sha256(ciphertext).hexdigest(), "browser")
        (bundle / info.file_name).write_bytes(ciphertext)
        entries.append(info)
    write_manifest(bundle, entries)
    return entries


def test_a_bundle_stops_at_the_first_gpg_failure_and_marks_no_tip_damaged(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    entries = write_bundle(bundle, gpg_reviewer, 3)
    gpg_reviewer.set_passphrase_answer("incorrect horse")
    kill_agents(gpg_reviewer.home)
    cases = tmp_path / "cases"

    result = tiprelay_decrypt("--gpg", bundle, "-o", cases, env=gpg_reviewer.environment())
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: Wrong passphrase for OpenPGP key {gpg_reviewer.fingerprint}." in result.stderr
    assert "damaged" not in (result.stdout + result.stderr).lower()
    assert not list(cases.rglob("message.txt"))

    # Nothing was recorded against the tips: with the right passphrase all open.
    gpg_reviewer.set_passphrase_answer(gpg_reviewer.passphrase)
    again = tiprelay_decrypt("--gpg", bundle, "-o", cases, env=gpg_reviewer.environment())
    assert again.returncode == 0, again.stdout + again.stderr
    messages = sorted(path.read_text() for path in cases.rglob("message.txt"))
    assert messages == [f"tip {number}" for number in range(1, len(entries) + 1)]



# --- hostile stanzas: anyone can encrypt to a reviewer's public key ------------------


def hostile_tip(reviewer: GpgReviewer, body: bytes) -> bytes:
    stanza = Stanza(STANZA_TYPE, (reviewer.fingerprint,), body)
    return encrypt_bytes(build_archive("hostile", day=DAY, sealed_by="browser"),
                         [FixedStanza(stanza), X25519Identity.generate().recipient])


def test_a_compressed_bomb_in_a_stanza_is_refused_in_bounded_memory(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    # 1 GB of zeros, bzip2-compressed inside the OpenPGP message: a few KB,
    # within the relay's 4 KiB cap, so an upload check would pass it.
    made = run(
        ["bash", "-c", 'head -c 1G /dev/zero | gpg --homedir "$1" --batch --trust-model always '
         '--compress-algo bzip2 --compress-level 9 --encrypt --recipient "$2"',
         "bomb", str(gpg_reviewer.home), gpg_reviewer.fingerprint],
        capture_output=True, timeout=300, check=True,
    )
    bomb = made.stdout
    assert len(bomb) < MAX_MESSAGE_BYTES
    tip = tmp_path / "bomb.age"
    tip.write_bytes(hostile_tip(gpg_reviewer, bomb))
    # The peak memory of tiprelay and of the gpg it runs, measured by a parent of
    # their own (this test process's children include browsers of other tests).
    measure = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(done.stderr, end='')\n"
    )
    out = tmp_path / "bomb.tar"
    result = run(
        [sys.executable, "-c", measure, TIPRELAY, "decrypt", "--gpg", "-o", str(out), str(tip)],
        capture_output=True, text=True, env=gpg_reviewer.environment(), timeout=120,
    )
    first, _, said = result.stdout.partition("\n")
    status, peak_kib = map(int, first.split())
    assert status == 1 and not out.exists(), result.stdout
    assert "could not open the OpenPGP stanza" in said or "16-byte file key" in said, said
    assert peak_kib < 300 * 1024, f"tiprelay or its gpg peaked at {peak_kib} KiB"


def test_one_damaged_stanza_in_a_bundle_marks_that_tip_and_the_others_open(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    entries = write_bundle(bundle, gpg_reviewer, 3)
    # Damage the second tip's stanza past its PKESK (the relay's check reads the
    # PKESK only, so such a file is stored), and keep the manifest's hash true.
    damaged = bundle / entries[1].file_name
    data = bytearray(damaged.read_bytes())
    with damaged.open("rb") as source:
        [stanza] = [s for s in read_header(source).stanzas if s.type == STANZA_TYPE]
    body = bytearray(stanza.body)
    body[-5] ^= 0x01
    data[:] = hostile_tip(gpg_reviewer, bytes(body))
    damaged.write_bytes(data)
    entries[1] = SubmissionInfo(entries[1].id, DAY, len(data),
                                hashlib.sha256(data).hexdigest(), "browser")
    write_manifest(bundle, entries)

    cases = tmp_path / "cases"
    result = tiprelay_decrypt("--gpg", bundle, "-o", cases, env=gpg_reviewer.environment())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "damaged" in result.stdout.lower(), result.stdout
    messages = sorted(path.read_text() for path in cases.rglob("message.txt"))
    assert messages == ["tip 1", "tip 3"]
