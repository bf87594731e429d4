"""``decrypt_bundle`` threads conversations and returns its report (library level):
a bundle built on disk with real age files, no relay needed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from relay.bundle import decrypt_bundle, summary_lines
from relay.container import build_archive
from relay.conversation.codename import generate_codename
from relay.conversation.derivation import ConversationKeys, derive_conversation_keys
from relay.conversation.reply import build_reply
from relay.conversation.slots import slot_tag
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.manifest import ReplyInfo, ReplyState, SubmissionInfo, write_manifest

DAY = "2026-03-01"


def add_tip(bundle: Path, identity: X25519Identity, keys: ConversationKeys | None) -> str:
    fields = keys.reply_keys().to_fields() if keys else None
    archive = build_archive("tip", sealed_by="browser", day=DAY, conversation=fields)
    blob = encrypt_bytes(archive, [identity.recipient])
    submission_id = os.urandom(16).hex()
    (bundle / f"{submission_id}.age").write_bytes(blob)
    return submission_id


def test_decrypt_threads_tips_and_checked_replies_and_refuses_a_fifo(tmp_path: Path) -> None:
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    (bundle / "replies").mkdir(parents=True)
    identity = X25519Identity.generate()
    keys = derive_conversation_keys(generate_codename(), os.urandom(32))
    ids = [add_tip(bundle, identity, keys), add_tip(bundle, identity, keys)]
    one_off = add_tip(bundle, identity, None)
    infos = []
    for submission_id in [*ids, one_off]:
        blob = (bundle / f"{submission_id}.age").read_bytes()
        digest = hashlib.sha256(blob).hexdigest()
        infos.append(SubmissionInfo(submission_id, DAY, len(blob), digest, "browser"))
    reply = build_reply(auth_key=keys.auth_key, conversation_id=keys.conversation_id, n=1,
                        day=DAY, message="first answer")
    blob = encrypt_bytes(reply, [keys.reply_recipient, identity.recipient])
    digest = hashlib.sha256(blob).hexdigest()
    (bundle / "replies" / f"{digest}.age").write_bytes(blob)
    fifo_digest = "ab" * 32
    os.mkfifo(bundle / "replies" / f"{fifo_digest}.age")
    state = ReplyState()
    for n, sha in ((1, digest), (2, fifo_digest)):
        tag = slot_tag(keys.slot_key, n).hex()
        state.pulled[sha] = ReplyInfo(tag, DAY, len(blob), sha)
        state.slots[tag] = sha
    write_manifest(bundle, infos, state)

    report = decrypt_bundle(bundle, out, [identity])
    (thread,) = report.threads
    assert thread.folder == out / f"conversation-{keys.conversation_id.hex()}"
    assert sorted(sid for _, sid in thread.tips) == sorted(ids)
    assert [(r.n, r.day) for r in thread.replies] == [(1, DAY)]
    assert (thread.folder / "reply-0001" / "message.txt").read_text() == "first answer"
    assert (out / f"{DAY}-{one_off}" / "message.txt").is_file()
    (problem,) = report.reply_problems
    assert "not a regular file" in problem
    lines = summary_lines(report)
    folder_line = f"conversation-{keys.conversation_id.hex()}/"
    assert any(line.strip() == folder_line for line in lines)
    assert any("reply n=1" in line for line in lines)

    # Running again files nothing twice.
    again = decrypt_bundle(bundle, out, [identity])
    assert again.new_replies == 0
    assert sorted(p.name for p in thread.folder.glob("reply-*")) == ["reply-0001"]
