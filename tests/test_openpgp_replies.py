"""Conversations with an OpenPGP reviewer in the team (issue 10, "in every path").

A real ``tiprelay serve`` with one age reviewer and one OpenPGP reviewer (an
ed25519 + cv25519 key in a test gpg home, loopback pinentry), both with API
keys; a source without JavaScript sends a tip with the codename the form
offers. The OpenPGP reviewer pulls, decrypts with ``--gpg``, pins the team
from the relay's keys/ files, replies with ``reply --gpg`` and pushes; the
relay accepts the reply only with the OpenPGP stanza; the source reads it on
``POST /replies``; the age reviewer opens it with stock ``age``. A reply
to X25519 keys alone is refused by the relay. An age
reviewer whose pin predates the OpenPGP reviewer is refused until they pin
again. Every child process goes through tests/support_process.
"""

from __future__ import annotations

import html
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.conversation.reply import build_reply
from relay.conversation.slots import delete_token, delete_token_hash, slot_tag
from relay.conversation_salt import ensure_conversation_salt
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey
from relay.fingerprint import recipient_set_fingerprint
from tests.support_conversation import NOSCRIPT_CODENAME, keys_for
from tests.support_conversation import SLOT_PATH as SLOT
from tests.support_openpgp import (
    GpgReviewer,
    add_openpgp_reviewer,
    gpg_reviewer_home,
    make_gpg_reviewer,
    remove_gpg_home,
)
from tests.support_process import run
from tests.support_reviewer import TIPRELAY, list_ids, send, signed_with_fields
from tests.support_server import RelayServer, new_relay
from tests.test_conversation_pages import post_form, submit

FETCH = "/api/v1/replies/fetch"


@dataclass
class Desk:
    """One reviewer's files on their machines: API key, bundle, decrypted folder, pin."""

    home: Path
    key_path: Path
    key: SigningKey

    @property
    def bundle(self) -> Path:
        return self.home / "bundle"

    @property
    def out(self) -> Path:
        return self.home / "cases"

    @property
    def team(self) -> Path:
        return self.home / "team"


@dataclass
class MixedTeam:
    relay: RelayServer
    olga: GpgReviewer
    olga_desk: Desk
    age_desk: Desk  # the relay's own age reviewer, "reviewer"


def tiprelay(
    *args: str | Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = run(
        [TIPRELAY, *map(str, args)], capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def new_desk(base: Path, name: str) -> Desk:
    home = base / name
    home.mkdir()
    key = SigningKey.generate()
    key_path = home / "api.key"
    key_path.write_text(key.to_key_file_text())
    key_path.chmod(0o600)
    return Desk(home, key_path, key)


@pytest.fixture(scope="module")
def mixed_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MixedTeam]:
    base = tmp_path_factory.mktemp("openpgp-replies")
    age_desk, olga_desk = new_desk(base, "age-reviewer"), new_desk(base, "olga")
    relay = new_relay(base / "relay", api_key_text=age_desk.key.public_key_text)
    ensure_conversation_salt(relay.keys_dir)
    # decrypt remembers its output folder in the config folder: not the real one.
    with pytest.MonkeyPatch.context() as patch, gpg_reviewer_home("olga") as olga:
        patch.setenv("XDG_CONFIG_HOME", str(base / "config"))
        add_openpgp_reviewer(relay.keys_dir, "olga", olga, olga_desk.key.public_key_text)
        relay.start()
        try:
            yield MixedTeam(relay, olga, olga_desk, age_desk)
        finally:
            relay.stop()


def no_js_tip(relay: RelayServer, desk: Desk, message: str) -> tuple[str, str]:
    """A tip sent from the form without JavaScript, with the codename it offers;
    (the codename's words, the tip's id as ``desk`` lists it)."""
    before = set(list_ids(relay.url, desk.key))
    form = send(relay.url, "GET", "/?lang=en")
    match = NOSCRIPT_CODENAME.search(form.body.decode())
    assert match is not None, "the form offers no codename without JavaScript"
    tip = submit(relay, [("lang", "en"), ("codename", match.group(1)), ("message", message)])
    assert tip.status == 200, tip.body[:300]  # the confirmation, codename shown once more
    (tip_id,) = set(list_ids(relay.url, desk.key)) - before
    return match.group(1), tip_id


def pull(team: MixedTeam, desk: Desk) -> None:
    tiprelay("pull", "--server", team.relay.url, "--key", desk.key_path, "-o", desk.bundle)


def fetched_reply(relay: RelayServer, words: str, slot: int) -> bytes:
    """The age file in a conversation's slot, as the source's page fetches it."""
    tag = slot_tag(keys_for(relay, words).slot_key, slot).hex()
    body = json.dumps({"tag": tag}).encode()
    answer = send(relay.url, "POST", FETCH, {"Content-Type": "application/json"}, body)
    assert answer.status == 200, answer
    return answer.body


def message_of_reply_with_stock_age(relay: RelayServer, age_file: Path) -> str:
    """The reply's message.txt, decrypted by stock ``age`` with the age reviewer's identity."""
    opened = run(["age", "-d", "-i", relay.identity_path, age_file], capture_output=True)
    assert opened.returncode == 0, opened.stderr
    with tarfile.open(fileobj=io.BytesIO(opened.stdout)) as archive:
        member = archive.extractfile("message.txt")
        assert member is not None
        return member.read().decode()


@pytest.mark.slow  # about 10 s: a dozen CLI runs, gpg, three derivations
def test_an_openpgp_reviewer_answers_a_no_js_source_with_reply_gpg(
    mixed_team: MixedTeam, tmp_path: Path
) -> None:
    team, desk, olga = mixed_team, mixed_team.olga_desk, mixed_team.olga
    words, tip_id = no_js_tip(team.relay, desk, "TIP-PGP Who reads this?")
    pull(team, desk)
    # Olga's own gpg (GNUPGHOME) opens the bundle.
    tiprelay("decrypt", "--gpg", desk.bundle, "-o", desk.out, env=olga.environment())
    thread = desk.out / f"conversation-{keys_for(team.relay, words).conversation_id.hex()}"
    assert [p.read_text() for p in thread.glob("*/message.txt")] == ["TIP-PGP Who reads this?"]

    # The pin, from the relay's keys/ files brought by hand: the same fingerprint.
    keys_dir = team.relay.keys_dir
    pinned = tiprelay("pin-team", "--team", desk.team, keys_dir / "reviewer.toml",
                      keys_dir / "olga.toml").stdout  # fmt: skip
    listed = send(team.relay.url, "GET", "/api/v1/recipients").json()
    assert isinstance(listed, dict)
    assert f"Fingerprint: {listed['fingerprint']}" in pinned
    assert f"openpgp:{olga.fingerprint}" in desk.team.read_text().splitlines()
    kept = desk.home / "team-openpgp" / f"{olga.fingerprint}.asc"
    assert kept.read_bytes() == olga.public_key

    # reply --gpg, with the home named by --gpg-homedir rather than GNUPGHOME.
    answer_text = "REPLY-PGP Olga here: wait for Thursday."
    written = tiprelay(
        "reply", "--gpg", "--gpg-homedir", olga.home, "-o", desk.out, "--team", desk.team,
        desk.bundle, "--to", tip_id, "-m", answer_text,
    ).stdout  # fmt: skip
    assert "n=1" in written and "2 pinned team key(s)" in written, written

    # The relay refuses a reply the OpenPGP reviewer could not read: as many stanzas,
    # but an X25519 one (a stranger's) where Olga's OpenPGP one should be.
    keys = keys_for(team.relay, words)
    fields = {
        "reply-slot": slot_tag(keys.slot_key, 1).hex(),
        "reply-expects": "empty",
        "reply-delete-token-hash": delete_token_hash(delete_token(keys.delete_key, 1)).hex(),
    }
    plaintext = build_reply(
        auth_key=keys.auth_key, conversation_id=keys.conversation_id, n=1, day="2026-01-01",
        message="for age keys only",
    )  # fmt: skip
    stranger = X25519Identity.generate().recipient
    age_only = encrypt_bytes(
        plaintext, [keys.reply_recipient, X25519Recipient.parse(team.relay.recipient), stranger]
    )
    refused = signed_with_fields(team.relay.url, "PUT", SLOT, desk.key, fields, age_only)
    assert refused.status == 400, refused
    assert b"X25519" in refused.body or b"OpenPGP" in refused.body, refused.body
    pushed = tiprelay("push", "--server", team.relay.url, "--key", desk.key_path, desk.bundle)
    assert "1 reply(ies) delivered" in pushed.stdout

    # On the relay: the OpenPGP stanza its check demanded, and the source's page reads it.
    stored = tmp_path / "reply.age"
    stored.write_bytes(fetched_reply(team.relay, words, 1))
    header = stored.read_bytes()[:4000]
    assert f"\n-> tiprelay-openpgp {olga.fingerprint}\n".encode() in header
    assert header.count(b"\n-> X25519 ") == 2  # the age reviewer and the source
    page = post_form(team.relay, "/replies", {"codename": words})
    assert page.status == 200, page.body[:500]
    assert html.escape(answer_text, quote=False) in page.body.decode()
    assert "could not be authenticated" not in page.body.decode()

    # The age reviewer opens the same reply with stock age.
    assert message_of_reply_with_stock_age(team.relay, stored) == answer_text

    # Olga's next pull files her reply in the thread, opened with her gpg.
    pull(team, desk)
    tiprelay("decrypt", "--gpg", desk.bundle, "-o", desk.out, env=olga.environment())
    assert (thread / "reply-0001" / "message.txt").read_text() == answer_text


@pytest.mark.slow  # about 11 s: CLI runs and gpg
def test_a_pin_without_the_openpgp_key_makes_reply_refuse_until_the_team_is_pinned_again(
    mixed_team: MixedTeam,
) -> None:
    team, desk = mixed_team, mixed_team.age_desk
    identity = team.relay.identity_path
    words, tip_id = no_js_tip(team.relay, desk, "TIP-AGE Anyone?")
    pull(team, desk)
    tiprelay("decrypt", "-i", identity, desk.bundle, "-o", desk.out)
    # A pin made before Olga joined: the age reviewer only.
    tiprelay("pin-team", "--team", desk.team, team.relay.keys_dir / "reviewer.toml")
    reply_args = ("reply", "-i", identity, "-o", desk.out, "--team", desk.team, desk.bundle,
                  "--to", tip_id, "-m", "REPLY-AGE Stay put.")  # fmt: skip
    refused = tiprelay(*reply_args, check=False)
    assert refused.returncode == 1, refused.stdout
    assert f"openpgp:{team.olga.fingerprint}" in refused.stderr and "refuses" in refused.stderr
    assert not list((desk.bundle / "outbox").glob("*.json"))

    # Olga's key brought by hand as an .asc file: the pin now matches the relay's set.
    asc = desk.home / "olga.asc"
    asc.write_bytes(team.olga.public_key)
    tiprelay("pin-team", "--team", desk.team, team.relay.keys_dir / "reviewer.toml", asc)
    tiprelay(*reply_args)
    tiprelay("push", "--server", team.relay.url, "--key", desk.key_path, desk.bundle)
    stored = fetched_reply(team.relay, words, 1)
    assert f"-> tiprelay-openpgp {team.olga.fingerprint}\n".encode() in stored[:4000]

    # Olga reads the age reviewer's reply with her gpg.
    olga = team.olga_desk
    pull(team, olga)
    tiprelay("decrypt", "--gpg", olga.bundle, "-o", olga.out, env=team.olga.environment())
    found = [p.read_text() for p in olga.out.glob("conversation-*/reply-*/message.txt")]
    assert "REPLY-AGE Stay put." in found


def test_pin_team_takes_an_asc_or_a_toml_alike_and_its_fingerprint_is_the_relays(
    mixed_team: MixedTeam, tmp_path: Path
) -> None:
    olga, keys_dir = mixed_team.olga, mixed_team.relay.keys_dir
    by_toml, by_asc = tmp_path / "by-toml", tmp_path / "by-asc"
    tiprelay("pin-team", "--team", by_toml, keys_dir / "reviewer.toml", keys_dir / "olga.toml")
    tiprelay("pin-team", "--team", by_asc, keys_dir / "reviewer.toml",
             keys_dir / f"{olga.fingerprint}.asc")  # fmt: skip
    assert by_toml.read_text() == by_asc.read_text()
    expected = recipient_set_fingerprint(
        [mixed_team.relay.recipient, f"openpgp:{olga.fingerprint}"]
    )
    assert f"# Fingerprint: {expected}\n" in by_toml.read_text()

    # Pinning again without Olga removes her kept key; a missing kept key stops reply.
    tiprelay("pin-team", "--team", by_asc, keys_dir / "reviewer.toml")
    assert not list((tmp_path / "by-asc-openpgp").glob("*.asc"))
    (tmp_path / "by-toml-openpgp" / f"{olga.fingerprint}.asc").unlink()
    refused = tiprelay(
        "reply", "-i", mixed_team.relay.identity_path, "-o", tmp_path / "cases", "--team",
        by_toml, mixed_team.age_desk.home, "--to", "0" * 32, "-m", "x", check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "is missing" in refused.stderr and "pin the team again" in refused.stderr


@pytest.mark.slow  # about 10 s: gpg makes a key
def test_pin_team_refuses_a_secret_key_and_a_key_that_cannot_encrypt(
    mixed_team: MixedTeam, tmp_path: Path
) -> None:
    secret = tmp_path / "olga-secret.asc"
    secret.write_bytes(mixed_team.olga.secret_key())
    refused = tiprelay("pin-team", "--team", tmp_path / "team", secret, check=False)
    assert refused.returncode == 1 and "SECRET" in refused.stderr, refused.stderr

    signer = make_gpg_reviewer("signer", "sign-only")
    try:
        sign_only = tmp_path / "signer.asc"
        sign_only.write_bytes(signer.public_key)
        refused = tiprelay("pin-team", "--team", tmp_path / "team", sign_only, check=False)
    finally:
        remove_gpg_home(signer.home)
    assert refused.returncode == 1 and "no usable encryption subkey" in refused.stderr
    assert not (tmp_path / "team").exists()


def test_reply_needs_an_identity_or_gpg(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    refused = tiprelay("reply", "-o", tmp_path, bundle, "--to", "0" * 32, "-m", "x", check=False)
    assert refused.returncode == 1
    assert "Nothing to read the bundle with" in refused.stderr and "--gpg" in refused.stderr
