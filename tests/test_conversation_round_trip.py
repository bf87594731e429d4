"""A whole conversation, as the people in it live it (issue 9, "Must show").

A source without JavaScript takes the codename the form offers and sends a tip;
a reviewer pulls, decrypts and replies offline with ``tiprelay reply``, and
pushes the reply online with ``tiprelay push``; the source types the codename
back in upper case with extra spaces and reads the reply on ``POST /replies``,
then sends a follow-up from that page; the next pull and decrypt shows the
thread of three (tip, reply, follow-up) in one folder. Everything real: a
``tiprelay serve`` on 127.0.0.1, the ``tiprelay`` CLI in child processes, a
plain form client (what a browser with JavaScript off sends).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.conversation.codename import fold_codename
from relay.conversation_salt import ensure_conversation_salt
from relay.crypto.signing import SigningKey
from tests.support_conversation import NOSCRIPT_CODENAME, files_containing
from tests.support_process import run
from tests.support_reviewer import TIPRELAY, Answer, send
from tests.support_server import RelayServer, new_relay, write_reviewer_key_file
from tests.test_conversation_pages import hidden_codename, post_form, submit


@dataclass
class Desk:
    """The reviewer's offline and online files."""

    identity: Path
    key_path: Path
    bundle: Path
    out: Path
    team: Path


@pytest.fixture()
def relay_and_desk(tmp_path: Path) -> Iterator[tuple[RelayServer, Desk]]:
    relay = new_relay(tmp_path / "relay")
    key = SigningKey.generate()
    desk_dir = tmp_path / "desk"
    desk_dir.mkdir()
    key_path = desk_dir / "api.key"
    key_path.write_text(key.to_key_file_text())
    key_path.chmod(0o600)
    write_reviewer_key_file(relay.keys_dir, "reviewer", relay.recipient, key.public_key_text)
    ensure_conversation_salt(relay.keys_dir)
    desk = Desk(
        relay.identity_path, key_path, desk_dir / "bundle", desk_dir / "cases", desk_dir / "team"
    )
    recipient_file = desk_dir / "reviewer.recipient"
    recipient_file.write_text(f"{relay.recipient}\n")
    tiprelay("pin-team", "--team", desk.team, recipient_file)
    relay.start()
    try:
        yield relay, desk
    finally:
        relay.stop()


def tiprelay(*args: str | Path) -> str:
    result = run([TIPRELAY, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def pull_and_decrypt(relay: RelayServer, desk: Desk) -> str:
    tiprelay("pull", "--server", relay.url, "--key", desk.key_path, "-o", desk.bundle)
    return tiprelay("decrypt", "-i", desk.identity, desk.bundle, "-o", desk.out)


def new_submission_ids(desk: Desk, known: set[str]) -> list[str]:
    manifest = json.loads((desk.bundle / "manifest.json").read_text())
    return [entry["id"] for entry in manifest["submissions"] if entry["id"] not in known]


@pytest.mark.slow  # some 10 CLI runs and three derivations: about 10 s
def test_no_js_source_and_offline_reviewer_hold_a_conversation_of_three(
    relay_and_desk: tuple[RelayServer, Desk],
) -> None:
    relay, desk = relay_and_desk
    form: Answer = send(relay.url, "GET", "/?lang=en")
    match = NOSCRIPT_CODENAME.search(form.body.decode())
    assert match is not None, "the form offers no codename without JavaScript"
    words = match.group(1)

    tip = submit(relay, [("lang", "en"), ("codename", words), ("message", "TIP-1 help me leave")])
    assert tip.status == 200, tip.body[:300]  # the confirmation, codename shown once more
    pull_and_decrypt(relay, desk)
    (tip_id,) = new_submission_ids(desk, set())
    threads = list(desk.out.glob("conversation-*"))
    assert len(threads) == 1, sorted(p.name for p in desk.out.iterdir())
    thread = threads[0]
    # The tip sealed the codename (no derivation on the relay); decrypt derived the
    # keys and left them, not the codename, in the case folder.
    (tip_folder,) = thread.glob(f"*-{tip_id}")
    tip_meta = json.loads((tip_folder / "submission.json").read_text())
    assert sorted(tip_meta["conversation"]) == sorted(
        ["kdf", "conversation_id", "reply_recipient", "slot_key", "auth_key", "delete_key"]
    )
    assert thread.name == f"conversation-{tip_meta['conversation']['conversation_id']}"
    indices = json.dumps(list(fold_codename(words).indices)).encode()
    assert files_containing(desk.out, [words.encode(), indices, b"codename_indices"]) == []

    answer_text = "REPLY-1 Take the night train; ask for Ilse at the station."
    written = tiprelay(
        "reply", "-i", desk.identity, "-o", desk.out, "--team", desk.team,
        desk.bundle, "--to", tip_id, "-m", answer_text,
    )  # fmt: skip
    assert "n=1" in written
    pushed = tiprelay("push", "--server", relay.url, "--key", desk.key_path, desk.bundle)
    assert "1 reply(ies) delivered" in pushed

    typed = "  " + "   ".join(word.upper() for word in words.split()) + "  "
    page_answer = post_form(relay, "/replies", {"codename": typed})
    assert page_answer.status == 200, page_answer.body[:500]
    page = page_answer.body.decode()
    assert "Decrypted by the server" in page
    assert html.escape(answer_text, quote=False) in page
    assert "could not be authenticated" not in page

    follow_up = submit(
        relay,
        [("lang", "en"), ("codename", hidden_codename(page, "follow-up-form")),
         ("message", "FOLLOW-UP-2 Tuesday night, then.")],
    )  # fmt: skip
    assert follow_up.status == 200
    summary = pull_and_decrypt(relay, desk)
    (follow_up_id,) = new_submission_ids(desk, {tip_id})

    names = sorted(path.name for path in thread.iterdir())
    tip_dirs = [name for name in names if name.endswith((tip_id, follow_up_id))]
    assert len(tip_dirs) == 2, names
    assert "reply-0001" in names, names
    assert (thread / "reply-0001" / "message.txt").read_text() == answer_text
    messages = [(thread / name / "message.txt").read_text() for name in tip_dirs]
    assert sorted(messages) == ["FOLLOW-UP-2 Tuesday night, then.", "TIP-1 help me leave"]
    listing = (thread / "thread.txt").read_text()
    assert listing.count(" tip ") == 2 and "reply n=1" in listing and "GAP" not in listing
    assert f"{thread.name}/" in summary

    # What stays on the relay: nothing that reads, names or links the conversation.
    conversation_id = thread.name.removeprefix("conversation-")
    needles = [
        words.encode(), typed.strip().encode(), conversation_id.encode(),
        b"TIP-1", b"REPLY-1", b"FOLLOW-UP-2", b"Ilse",
        *(word.encode() for word in words.split() if len(word) > 5),
    ]  # fmt: skip
    for folder in (relay.data_dir, relay.tmp_dir):
        assert files_containing(folder, needles) == []
    log = relay.log_text()
    assert not re.search("|".join(re.escape(n.decode()) for n in needles), log)
