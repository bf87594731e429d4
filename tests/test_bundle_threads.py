"""``decrypt_bundle`` threads conversations and returns its report (library level):
a bundle built on disk with real age files, no relay needed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from relay import bundle as bundle_module
from relay.bundle import decrypt_bundle, summary_lines
from relay.container import build_archive
from relay.conversation.codename import generate_codename
from relay.conversation.derivation import (
    ConversationKeys,
    codename_fields,
    derive_conversation_keys,
    process_deriver,
)
from relay.conversation.reply import build_reply
from relay.conversation.slots import slot_tag
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.manifest import ReplyInfo, ReplyState, SubmissionInfo, write_manifest
from relay.threads import read_threads

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


def test_no_js_tips_sealed_with_their_codename_are_derived_once_and_threaded(
    tmp_path: Path,
) -> None:
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    (bundle / "replies").mkdir(parents=True)
    identity = X25519Identity.generate()
    codename, salt = generate_codename(), os.urandom(32)
    keys = derive_conversation_keys(codename, salt)
    sealed = codename_fields(codename, salt)
    ids = []
    for conversation, sealed_by in ((sealed, "server"), (sealed, "server"),
                                    (keys.reply_keys().to_fields(), "browser")):  # fmt: skip
        archive = build_archive("tip", sealed_by=sealed_by, day=DAY, conversation=conversation)
        blob = encrypt_bytes(archive, [identity.recipient])
        ids.append(os.urandom(16).hex())
        (bundle / f"{ids[-1]}.age").write_bytes(blob)
    infos = []
    for submission_id, sealed_by in zip(ids, ("server", "server", "browser"), strict=True):
        blob = (bundle / f"{submission_id}.age").read_bytes()
        infos.append(SubmissionInfo(submission_id, DAY, len(blob),
                                    hashlib.sha256(blob).hexdigest(), sealed_by))  # fmt: skip
    reply = build_reply(auth_key=keys.auth_key, conversation_id=keys.conversation_id, n=1,
                        day=DAY, message="first answer")  # fmt: skip
    reply_blob = encrypt_bytes(reply, [keys.reply_recipient, identity.recipient])
    digest = hashlib.sha256(reply_blob).hexdigest()
    (bundle / "replies" / f"{digest}.age").write_bytes(reply_blob)
    state = ReplyState()
    tag = slot_tag(keys.slot_key, 1).hex()
    state.pulled[digest] = ReplyInfo(tag, DAY, len(reply_blob), digest)
    state.slots[tag] = digest
    write_manifest(bundle, infos, state)

    derivations = process_deriver.derivations
    report = decrypt_bundle(bundle, out, [identity])
    assert process_deriver.derivations == derivations + 1  # one codename, one PBKDF2
    (thread,) = report.threads
    assert thread.folder == out / f"conversation-{keys.conversation_id.hex()}"
    assert sorted(sid for _, sid in thread.tips) == sorted(ids)
    assert (thread.folder / "reply-0001" / "message.txt").read_text() == "first answer"
    # The extracted tips hold the derived fields; the codename stays in the age files.
    for submission_id in ids:
        tip_folder = thread.folder / f"{DAY}-{submission_id}"
        meta = json.loads((tip_folder / "submission.json").read_text())
        assert meta["conversation"] == keys.reply_keys().to_fields()
    assert not [p for p in out.rglob("*") if p.is_file() and b"codename_indices" in p.read_bytes()]
    # A later run reads the thread's keys from the extracted tips without deriving.
    assert read_threads(out)[0].keys is not None
    assert process_deriver.derivations == derivations + 1


def test_a_damaged_sealed_codename_is_reported_and_left_a_one_off(tmp_path: Path) -> None:
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    bundle.mkdir()
    identity = X25519Identity.generate()
    broken = {**codename_fields(generate_codename(), os.urandom(32)),
              "codename_indices": [1, 2, 3, 4, 5, 6, 7776]}  # fmt: skip
    archive = build_archive("tip", sealed_by="server", day=DAY, conversation=broken)
    blob = encrypt_bytes(archive, [identity.recipient])
    submission_id = os.urandom(16).hex()
    (bundle / f"{submission_id}.age").write_bytes(blob)
    info = SubmissionInfo(submission_id, DAY, len(blob), hashlib.sha256(blob).hexdigest(),
                          "server")  # fmt: skip
    write_manifest(bundle, [info], ReplyState())
    report = decrypt_bundle(bundle, out, [identity])
    (outcome,) = report.outcomes
    assert any("conversation fields are unusable" in note for note in outcome.notes)
    assert report.threads == []
    assert (out / f"{DAY}-{submission_id}" / "message.txt").read_text() == "tip"


def test_a_decrypt_interrupted_before_the_codename_is_replaced_leaves_no_codename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the offline machine derives a no-JS tip's keys: no case folder holds
    the codename, and the next run decrypts that tip again (it is not 'already there')."""
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    (bundle / "replies").mkdir(parents=True)
    identity = X25519Identity.generate()
    codename, salt = generate_codename(), os.urandom(32)
    archive = build_archive("tip", sealed_by="server", day=DAY,
                            conversation=codename_fields(codename, salt))  # fmt: skip
    blob = encrypt_bytes(archive, [identity.recipient])
    submission_id = os.urandom(16).hex()
    (bundle / f"{submission_id}.age").write_bytes(blob)
    info = SubmissionInfo(submission_id, DAY, len(blob), hashlib.sha256(blob).hexdigest(),
                          "server")  # fmt: skip
    write_manifest(bundle, [info], ReplyState())

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(bundle_module, "replace_codename_with_keys", interrupted)
        with pytest.raises(KeyboardInterrupt):
            decrypt_bundle(bundle, out, [identity])
    assert not [p for p in out.rglob("*") if p.is_file() and b"codename_indices" in p.read_bytes()]

    report = decrypt_bundle(bundle, out, [identity])
    (thread,) = report.threads
    meta = json.loads((thread.folder / f"{DAY}-{submission_id}" / "submission.json").read_text())
    keys = derive_conversation_keys(codename, salt)
    assert meta["conversation"] == keys.reply_keys().to_fields()
    assert not [p for p in out.rglob("*") if p.is_file() and b"codename_indices" in p.read_bytes()]
