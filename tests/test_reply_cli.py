"""The reviewer's half of conversations, end to end over real HTTP (issue 9):
pin-team, pull (replies and the relay's recipient set), decrypt (threads),
reply (offline, into the outbox), push (compare-and-swap), against a real
``tiprelay serve`` on 127.0.0.1, with two reviewers.

Tips with a codename are made as the browser makes them: the container built
with relay.container (conversation fields included), sealed to the reviewers,
uploaded over tus. The source reads replies as its page would: POST
/api/v1/replies/fetch, then open_reply with the keys derived from its codename.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.cli.demo import instructions
from relay.container import build_archive
from relay.conversation.codename import Codename, generate_codename
from relay.conversation.derivation import ConversationKeys, derive_conversation_keys
from relay.conversation.identity import open_reply
from relay.conversation.reply import Reply, build_reply
from relay.conversation.slots import delete_token, slot_tag
from relay.conversation_salt import ensure_conversation_salt
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey
from tests.support_process import run
from tests.support_reviewer import TIPRELAY, list_ids, send, signed_with_fields, upload_sealed
from tests.support_server import (
    RelayServer,
    generate_identity,
    new_relay,
    write_reviewer_key_file,
)

FETCH = "/api/v1/replies/fetch"
SLOT = "/api/v1/replies/slot"


@dataclass
class Reviewer:
    """One reviewer's files: identity, API key, bundle, decrypted folder, pinned team."""

    name: str
    home: Path
    identity: Path
    recipient: str
    key_path: Path
    key: SigningKey

    @property
    def bundle(self) -> Path:
        return self.home / "bundle"

    @property
    def out(self) -> Path:
        return self.home / "decrypted"

    @property
    def team(self) -> Path:
        return self.home / "team"


@dataclass
class Team:
    relay: RelayServer
    salt: bytes
    alice: Reviewer
    bob: Reviewer


def tiprelay(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = run(
        [TIPRELAY, *map(str, args)], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def make_reviewer(relay: RelayServer, base: Path, name: str) -> Reviewer:
    home = base / name
    home.mkdir()
    key = SigningKey.generate()
    key_path = home / "api.key"
    key_path.write_text(key.to_key_file_text())
    key_path.chmod(0o600)
    if name == "alice":  # the relay's own reviewer, made by new_relay
        identity, recipient = relay.identity_path, relay.recipient
        write_reviewer_key_file(relay.keys_dir, "reviewer", recipient, key.public_key_text)
    else:
        identity = home / "identity.txt"
        recipient = generate_identity(identity)
        write_reviewer_key_file(relay.keys_dir, name, recipient, key.public_key_text)
    return Reviewer(name, home, identity, recipient, key_path, key)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    base = tmp_path_factory.mktemp("reply-cli")
    relay = new_relay(base / "relay")
    alice = make_reviewer(relay, base, "alice")
    bob = make_reviewer(relay, base, "bob")
    salt, _ = ensure_conversation_salt(relay.keys_dir)
    for reviewer in (alice, bob):
        pin_files = []
        for other in (alice, bob):
            path = reviewer.home / f"{other.name}.recipient"
            path.write_text(f"# {other.name}\n{other.recipient}\n")
            pin_files.append(path)
        tiprelay("pin-team", "--team", reviewer.team, *pin_files)
    relay.start()
    try:
        yield Team(relay, salt, alice, bob)
    finally:
        relay.stop()


def send_tip(team: Team, message: str, codename: Codename) -> tuple[str, ConversationKeys]:
    """A tip sealed in the 'browser' with the codename's conversation fields; its id."""
    keys = derive_conversation_keys(codename, team.salt)
    before = set(list_ids(team.relay.url, team.alice.key))
    archive = build_archive(
        message, sealed_by="browser", conversation=keys.reply_keys().to_fields()
    )
    recipients = [X25519Recipient.parse(r.recipient) for r in (team.alice, team.bob)]
    upload_sealed(team.relay.url, encrypt_bytes(archive, recipients))
    (new_id,) = set(list_ids(team.relay.url, team.alice.key)) - before
    return new_id, keys


def pull(team: Team, reviewer: Reviewer) -> str:
    return tiprelay(
        "pull", "--server", team.relay.url, "--key", reviewer.key_path, "-o", reviewer.bundle
    ).stdout


def decrypt(reviewer: Reviewer) -> str:
    return tiprelay("decrypt", "-i", reviewer.identity, reviewer.bundle, "-o", reviewer.out).stdout


def reply(
    reviewer: Reviewer, submission_id: str, text: str, *extra: str | Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return tiprelay(
        "reply", "-i", reviewer.identity, "-o", reviewer.out, "--team", reviewer.team,
        reviewer.bundle, "--to", submission_id, "-m", text, *extra, check=check,
    )


def push(team: Team, reviewer: Reviewer, check: bool = True) -> subprocess.CompletedProcess[str]:
    return tiprelay(
        "push", "--server", team.relay.url, "--key", reviewer.key_path, reviewer.bundle,
        check=check,
    )


def source_reads(team: Team, keys: ConversationKeys, slot: int) -> Reply | None:
    """What the source's page shows for one slot (None: empty)."""
    body = json.dumps({"tag": slot_tag(keys.slot_key, slot).hex()}).encode()
    answer = send(team.relay.url, "POST", FETCH, {"Content-Type": "application/json"}, body)
    if answer.status == 404:
        return None
    assert answer.status == 200, answer
    return open_reply(answer.body, keys, slot)


def all_bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.slow  # about 8 s: some 15 CLI runs
def test_reply_round_trip_threads_tip_reply_and_follow_up(team: Team) -> None:
    codename = generate_codename()
    tip_id, keys = send_tip(team, "They watch the border crossing.", codename)
    alice = team.alice
    pull(team, alice)
    assert (alice.bundle / "recipients.json").is_file()
    decrypt(alice)
    thread_dir = alice.out / f"conversation-{keys.conversation_id.hex()}"
    assert (thread_dir / f"{_day_of(alice, tip_id)}-{tip_id}" / "message.txt").is_file()

    marker = "Go to the church on Tuesday; ask for Ilse. MARKER-7f3a"
    attachment = alice.home / "map.txt"
    attachment.write_text("the map MARKER-ATTACHED")
    written = reply(alice, tip_id, marker, "--attach", attachment)
    assert "Reply n=1 written" in written.stdout
    outgoing = list(thread_dir.glob("outgoing-*"))
    assert len(outgoing) == 1 and (outgoing[0] / "message.txt").read_text() == marker

    # The outbox holds ciphertext, tag and hashes: nothing that names or reads the thread.
    outbox = all_bytes_under(alice.bundle / "outbox")
    assert outbox
    secrets_of_thread = [
        str(codename).encode(), *(word.encode() for word in codename.words if len(word) > 4),
        keys.conversation_id.hex().encode(), keys.slot_key.hex().encode(),
        keys.auth_key.hex().encode(), keys.delete_key.hex().encode(),
        keys.reply_keys().to_fields()["reply_recipient"].encode(),
        tip_id.encode(), b"MARKER", b"church",
    ]
    for secret in secrets_of_thread:
        assert secret not in outbox, secret
    assert [p.suffix for p in (alice.bundle / "outbox").iterdir()] == [".json"]

    assert "not pushed yet" in pull(team, alice)
    assert source_reads(team, keys, 1) is None
    pushed = push(team, alice)
    assert "1 reply(ies) delivered" in pushed.stdout
    assert not list((alice.bundle / "outbox").iterdir())
    assert len(list((alice.bundle / "sent").iterdir())) == 1
    assert push(team, alice).stdout.startswith("0 reply(ies) delivered")  # again: nothing to do

    seen = source_reads(team, keys, 1)
    assert seen is not None and (seen.n, seen.message) == (1, marker)
    assert [(a.name, a.data) for a in seen.attachments] == [("map.txt", b"the map MARKER-ATTACHED")]

    follow_id, _ = send_tip(team, "Tuesday is fine. What should I bring?", codename)
    pull(team, alice)
    summary = decrypt(alice)
    names = sorted(p.name for p in thread_dir.iterdir())
    assert f"{_day_of(alice, tip_id)}-{tip_id}" in names
    assert f"{_day_of(alice, follow_id)}-{follow_id}" in names
    assert "reply-0001" in names and not any(n.startswith("outgoing-") for n in names)
    listing = (thread_dir / "thread.txt").read_text()
    assert listing.count(" tip ") == 2 and "reply n=1" in listing and "GAP" not in listing
    assert f"conversation-{keys.conversation_id.hex()}/" in summary
    assert "reply n=1" in summary

    # Bob (the other pinned reviewer) reads the same thread, reply included, from his pull.
    pull(team, team.bob)
    decrypt(team.bob)
    bob_reply = team.bob.out / thread_dir.name / "reply-0001" / "message.txt"
    assert bob_reply.read_text() == marker


def _day_of(reviewer: Reviewer, submission_id: str) -> str:
    manifest = json.loads((reviewer.bundle / "manifest.json").read_text())
    (day,) = [e["day"] for e in manifest["submissions"] if e["id"] == submission_id]
    return str(day)


@pytest.mark.slow  # about 9 s: some 15 CLI runs
def test_two_reviewers_reply_to_one_thread_the_second_pulls_and_replies_again(
    team: Team,
) -> None:
    tip_id, keys = send_tip(team, "Two of you may answer.", generate_codename())
    alice, bob = team.alice, team.bob
    for reviewer in (alice, bob):
        pull(team, reviewer)
        decrypt(reviewer)
    assert "Reply n=1" in reply(alice, tip_id, "Alice: stay home tonight.").stdout
    assert "Reply n=1" in reply(bob, tip_id, "Bob: leave by the north road.").stdout
    push(team, alice)
    refused = push(team, bob, check=False)
    assert refused.returncode == 1
    assert "pull, then reply again" in refused.stderr
    assert len(list((bob.bundle / "conflicted").iterdir())) == 1

    pull(team, bob)
    decrypt(bob)
    again = reply(bob, tip_id, "Bob: after Alice's advice, leave by the north road.")
    assert "Reply n=2" in again.stdout
    thread_dir = bob.out / f"conversation-{keys.conversation_id.hex()}"
    listing = (thread_dir / "thread.txt").read_text()
    assert "NOT DELIVERED: not-delivered-" in listing and "reply n=1" in listing
    assert len(list(thread_dir.glob("not-delivered-*"))) == 1
    push(team, bob)
    first, second = source_reads(team, keys, 1), source_reads(team, keys, 2)
    assert first is not None and (first.n, first.message) == (1, "Alice: stay home tonight.")
    assert second is not None and second.n == 2 and second.message.startswith("Bob: after")


def test_a_pulled_recipient_set_with_an_extra_key_makes_reply_refuse(
    team: Team, tmp_path: Path
) -> None:
    tip_id, _ = send_tip(team, "Anyone there?", generate_codename())
    alice = team.alice
    pull(team, alice)
    decrypt(alice)
    # The relay starts listing a key the team never brought by hand (a seized relay's own).
    intruder = generate_identity(tmp_path / "intruder.txt")
    intruder_file = write_reviewer_key_file(team.relay.keys_dir, "intruder", intruder)
    try:
        relisted(team, expected=3)
        pull(team, alice)
    finally:
        intruder_file.unlink()
        relisted(team, expected=2)
    assert intruder in json.loads((alice.bundle / "recipients.json").read_text())["recipients"]
    refused = reply(alice, tip_id, "hello", check=False)
    assert refused.returncode == 1
    assert intruder in refused.stderr and "refuses" in refused.stderr
    assert not list((alice.bundle / "outbox").glob("*.json"))


def test_a_tip_sent_without_a_codename_cannot_be_answered(team: Team) -> None:
    before = set(list_ids(team.relay.url, team.alice.key))
    archive = build_archive("one-off", sealed_by="browser")
    recipients = [X25519Recipient.parse(r.recipient) for r in (team.alice, team.bob)]
    upload_sealed(team.relay.url, encrypt_bytes(archive, recipients))
    (one_off,) = set(list_ids(team.relay.url, team.alice.key)) - before
    pull(team, team.alice)
    refused = reply(team.alice, one_off, "hello?", check=False)
    assert refused.returncode == 1 and "without a codename" in refused.stderr


def relisted(team: Team, expected: int) -> None:
    """Reload the relay's keys/ and wait (bounded) until it lists ``expected`` recipients."""
    team.relay.reload_keys()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = send(team.relay.url, "GET", "/api/v1/recipients").json()
        if len(listed["recipients"]) == expected:  # type: ignore[index]
            return
        time.sleep(0.05)
    raise AssertionError(f"the relay never listed {expected} recipients")


def test_reply_without_a_pinned_team_says_how_to_pin(team: Team, tmp_path: Path) -> None:
    tip_id, _ = send_tip(team, "Pin first.", generate_codename())
    alice = team.alice
    pull(team, alice)
    refused = tiprelay(
        "reply", "-i", alice.identity, "-o", alice.out, "--team", tmp_path / "none",
        alice.bundle, "--to", tip_id, "-m", "x", check=False,
    )
    assert refused.returncode == 1 and "tiprelay pin-team" in refused.stderr
    assert os.path.exists(alice.bundle)


def test_forged_and_moved_replies_are_reported_never_filed(team: Team) -> None:
    tip_id, keys = send_tip(team, "Is this really you?", generate_codename())
    alice = team.alice
    pull(team, alice)
    decrypt(alice)
    reply(alice, tip_id, "Genuine reply one.")
    push(team, alice)
    genuine = send(
        team.relay.url, "POST", FETCH, {"Content-Type": "application/json"},
        json.dumps({"tag": slot_tag(keys.slot_key, 1).hex()}).encode(),
    ).body
    team_recipients = [X25519Recipient.parse(r.recipient) for r in (alice, team.bob)]
    # Slot 2: a reply under the right tag and conversation id, without the auth key.
    forged = build_reply(
        auth_key=os.urandom(32), conversation_id=keys.conversation_id, n=2,
        day="2026-01-01", message="FORGED: come to the station alone",
    )
    put_raw(team, slot_tag(keys.slot_key, 2).hex(),
            encrypt_bytes(forged, [keys.reply_recipient, *team_recipients]))
    # Slot 3: the genuine reply n=1, moved there by someone holding the server.
    put_raw(team, slot_tag(keys.slot_key, 3).hex(), genuine)
    pull(team, alice)
    summary = decrypt(alice)
    assert summary.count("NOT AUTHENTIC") == 2
    assert "(not_authentic)" in summary and "(wrong_slot)" in summary
    thread_dir = alice.out / f"conversation-{keys.conversation_id.hex()}"
    filed = sorted(p.name for p in thread_dir.glob("reply-*"))
    assert filed == ["reply-0001"]
    assert b"FORGED" not in all_bytes_under(thread_dir)


def put_raw(team: Team, tag: str, body: bytes) -> None:
    fields = {
        "reply-slot": tag,
        "reply-expects": "empty",
        "reply-delete-token-hash": hashlib.sha256(os.urandom(32)).hexdigest(),
    }
    answer = signed_with_fields(team.relay.url, "PUT", SLOT, team.alice.key, fields, body)
    assert answer.status == 201, answer


@pytest.mark.slow  # about 5 s under load: some 12 CLI runs
def test_push_is_safe_to_rerun_and_a_deleted_reply_shows_as_a_gap(
    team: Team, tmp_path: Path
) -> None:
    tip_id, keys = send_tip(team, "I will read and delete.", generate_codename())
    alice = team.alice
    pull(team, alice)
    decrypt(alice)
    reply(alice, tip_id, "First: read this, then delete it.")
    (entry,) = (alice.bundle / "outbox").iterdir()
    kept = entry.read_bytes()
    push(team, alice)
    # A crash after the relay stored it, before the move to sent/: the entry is back.
    (alice.bundle / "sent" / entry.name).unlink()
    entry.write_bytes(kept)
    again = push(team, alice)
    assert again.stdout.startswith("1 reply(ies) delivered")
    assert not list((alice.bundle / "outbox").iterdir())
    reply(alice, tip_id, "Second.")
    push(team, alice)
    # The source reads reply 1 and deletes it with its token.
    token = delete_token(keys.delete_key, 1).hex()
    deleted = send(
        team.relay.url, "POST", "/api/v1/replies/delete", {"Content-Type": "application/json"},
        json.dumps({"tag": slot_tag(keys.slot_key, 1).hex(), "token": token}).encode(),
    )
    assert deleted.status == 204
    # A reviewer who never saw reply 1 (a fresh bundle) sees the gap.
    fresh = Reviewer(
        "alice-laptop", tmp_path, alice.identity, alice.recipient, alice.key_path, alice.key
    )
    pull(team, fresh)
    summary = decrypt(fresh)
    listing = (fresh.out / f"conversation-{keys.conversation_id.hex()}" / "thread.txt")
    assert "GAP: reply n=1 is missing" in listing.read_text()
    assert "reply n=2" in summary and "GAP: reply n=1" in summary


def test_the_demo_prints_how_to_pin_reply_and_push_and_its_pin_command_works(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "demo dir"
    recipient = generate_identity(tmp_path / "id.txt")
    write_reviewer_key_file(directory / "keys", "demo", recipient)
    printed = instructions(directory, 8080)
    lines = [line.strip() for line in printed.splitlines()]
    (pin,) = [line for line in lines if " pin-team " in line]
    assert any(" reply -i " in line and " --to ID " in line for line in lines)
    assert any(" push --server http://127.0.0.1:8080 " in line for line in lines)
    result = run(["/bin/bash", "-c", pin], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert recipient in (directory / "team").read_text()


def test_reply_without_o_uses_the_folder_decrypt_wrote_to_and_says_so_when_there_is_none(
    team: Team, tmp_path: Path
) -> None:
    alice = team.alice
    tip_id, keys = send_tip(team, "Which road is open?", generate_codename())
    pull(team, alice)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def run_tiprelay(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return run([TIPRELAY, *map(str, args)], capture_output=True, text=True, timeout=120,
                   stdin=subprocess.DEVNULL, env=env)

    reply_args = ("reply", "-i", alice.identity, "--team", alice.team, alice.bundle,
                  "--to", tip_id, "-m", "The north road.")
    refused = run_tiprelay(*reply_args)
    assert refused.returncode == 1
    assert "Which folder holds the decrypted threads?" in refused.stderr
    assert "Pass -o OUT_DIR" in refused.stderr

    decrypted = run_tiprelay("decrypt", "-i", alice.identity, alice.bundle, "-o", alice.out)
    assert decrypted.returncode == 0, decrypted.stderr
    written = run_tiprelay(*reply_args)
    assert written.returncode == 0, written.stderr
    thread = alice.out / f"conversation-{keys.conversation_id.hex()}"
    outgoing = [p for p in thread.glob("outgoing-*") if (p / "message.txt").is_file()]
    assert [(p / "message.txt").read_text() for p in outgoing] == ["The north road."]
