"""Writing a reply on the offline machine (``tiprelay reply``).

1. Refresh the threads from the bundle (``relay.bundle.decrypt_bundle``), so that
   replies pulled since the last decrypt count.
2. Find the thread of the submission the reviewer answers, and its reply keys.
3. Encrypt only to the source's reply recipient and the team **pinned** on this
   machine (``relay.team``); a pulled recipient set with a key the pin lacks is
   refused, any other difference is reported. The pinned OpenPGP keys are
   wrapped to by gpg in a throwaway home of public keys only
   (``PublicKeyring.temporary``), removed as soon as the header is written.
4. Number the reply: one more than the highest n of the thread, counting the
   replies pulled and those written here still in ``outbox/`` or ``sent/``
   (not those in ``conflicted/``).
5. Build the MACed container, encrypt it, and put ciphertext, slot tag, the hash
   the slot held at the last pull and the delete-token hash into the outbox.
6. Keep the plaintext in the thread folder as ``outgoing-<entry>/``.

Offline code: nothing here imports aiohttp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from relay.bundle import decrypt_bundle
from relay.conversation.reply import build_reply, read_reply
from relay.conversation.slots import delete_token, delete_token_hash, slot_of_reply, slot_tag
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.openpgp_recipient import OpenPGPRecipient, PublicKeyring
from relay.crypto.recipients import Recipient, X25519Recipient
from relay.crypto.unwrap import Identity
from relay.manifest import read_reply_state
from relay.outbox import (
    EMPTY_SLOT,
    OUTBOX_DIR,
    SENT_DIR,
    OutboxEntry,
    entry_names,
    write_outbox_entry,
)
from relay.team import PinnedTeam, TeamError, compare_with_pulled, load_pinned_team
from relay.threads import (
    OUTGOING_PREFIX,
    read_thread,
    save_reply,
    thread_of_submission,
    write_listing,
)


@dataclass
class ReplyWritten:
    """What ``write_reply`` did."""

    n: int
    folder: Path
    outbox_entry: str
    team_size: int
    warnings: list[str] = field(default_factory=list)


def write_reply(
    bundle_dir: Path,
    out_dir: Path,
    identities: Sequence[Identity],
    *,
    submission_id: str,
    message: str,
    attachments: Sequence[tuple[str, bytes]],
    team_path: Path,
    ring_size: int,
    today: str | None = None,
) -> ReplyWritten:
    """Write one reply to the thread of ``submission_id``; see the module docstring."""
    team = load_pinned_team(team_path)
    comparison = compare_with_pulled(bundle_dir, team)
    if comparison.extra:
        raise TeamError(
            "The relay's recipient set recorded at the last pull holds key(s) that the "
            f"pinned team does not: {', '.join(comparison.extra)}. A seized or impostor relay "
            "may have added its own key; reply refuses to use that set. Check with the team; "
            "if the key is genuine, pin the team again from the files they bring by hand."
        )
    decrypt_bundle(bundle_dir, out_dir, identities, ring_size=ring_size)
    thread = thread_of_submission(out_dir, submission_id)
    keys = thread.keys
    assert keys is not None
    waiting = set(entry_names(bundle_dir, OUTBOX_DIR)) | set(entry_names(bundle_dir, SENT_DIR))
    numbers = [
        reply.n
        for reply in thread.replies
        if reply.outbox_entry is None or reply.outbox_entry in waiting
    ]
    n = max(numbers, default=0) + 1
    day = today or datetime.now(UTC).date().isoformat()
    slot = slot_of_reply(n, ring_size)
    tag = slot_tag(keys.slot_key, slot).hex()
    plaintext = build_reply(
        auth_key=keys.auth_key,
        conversation_id=keys.conversation_id,
        n=n,
        day=day,
        message=message,
        attachments=attachments,
    )
    checked = read_reply(
        plaintext,
        auth_key=keys.auth_key,
        conversation_id=keys.conversation_id,
        slot=slot,
        ring_size=ring_size,
    )
    ciphertext = encrypt_to_team(plaintext, keys.reply_recipient, team)
    entry = OutboxEntry(
        tag=tag,
        expects=read_reply_state(bundle_dir).slots.get(tag, EMPTY_SLOT),
        delete_token_hash=delete_token_hash(delete_token(keys.delete_key, slot)).hex(),
        ciphertext=ciphertext,
    )
    name = write_outbox_entry(bundle_dir, entry)
    folder = save_reply(
        thread.folder,
        OUTGOING_PREFIX + name.removesuffix(".json"),
        checked,
        entry.sha256,
        outbox_entry=name,
    )
    write_listing(read_thread(thread.folder))
    return ReplyWritten(n, folder, name, len(team), comparison.warnings())


def encrypt_to_team(plaintext: bytes, source: X25519Recipient, team: PinnedTeam) -> bytes:
    """An age file of ``plaintext`` to the source and every pinned key, age and OpenPGP."""
    if not team.openpgp:
        return encrypt_bytes(plaintext, [source, *team.age])
    keyring = PublicKeyring.temporary(team.openpgp)
    try:
        recipients: list[Recipient] = [source, *team.age]
        recipients += [OpenPGPRecipient(key, keyring) for key in team.openpgp]
        return encrypt_bytes(plaintext, recipients)
    finally:
        keyring.close()
