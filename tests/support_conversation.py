"""Conversation helpers for tests: a relay with a salt, replies put as a reviewer would,
and reading a stored submission's ``submission.json``.

Replies are genuine (``build_reply`` + age encryption to the source's reply
recipient and the relay's reviewer, as ``tiprelay reply`` makes them) or
forged in the ways an attacker holding the disk could try; they go into their
slot through the signed reviewer API (``PUT /api/v1/replies/slot``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from relay.conversation.codename import fold_codename
from relay.conversation.derivation import ConversationKeys, derive_conversation_keys
from relay.conversation.reply import build_reply
from relay.conversation.slots import delete_token, delete_token_hash, slot_tag
from relay.conversation_salt import ensure_conversation_salt, load_conversation_salt
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.recipients import X25519Recipient
from relay.crypto.signing import SigningKey
from tests.support_reviewer import Answer, signed_with_fields
from tests.support_server import RelayServer, new_relay

SLOT_PATH = "/api/v1/replies/slot"
DAY = "2025-03-04"


def sealed_reply(
    relay: RelayServer,
    keys: ConversationKeys,
    n: int,
    message: str,
    attachments: Iterable[tuple[str, bytes]] = (),
    *,
    auth_key: bytes | None = None,
    conversation_id: bytes | None = None,
    day: str = DAY,
) -> bytes:
    """A reply's age file to ``keys``' reply recipient and the relay's reviewer.

    ``auth_key`` / ``conversation_id`` default to the conversation's own: pass
    others to forge (a MAC made without the auth key, another conversation's reply).
    """
    plaintext = build_reply(
        auth_key=keys.auth_key if auth_key is None else auth_key,
        conversation_id=keys.conversation_id if conversation_id is None else conversation_id,
        n=n,
        day=day,
        message=message,
        attachments=tuple(attachments),
    )
    return encrypt_bytes(plaintext, [keys.reply_recipient, X25519Recipient.parse(relay.recipient)])


def put_reply(
    relay: RelayServer, key: SigningKey, keys: ConversationKeys, slot: int, age_file: bytes
) -> Answer:
    """Put ``age_file`` into the conversation's ``slot`` (empty before), as a reviewer."""
    token = delete_token(keys.delete_key, slot)
    fields = {
        "reply-slot": slot_tag(keys.slot_key, slot).hex(),
        "reply-expects": "empty",
        "reply-delete-token-hash": delete_token_hash(token).hex(),
    }
    answer = signed_with_fields(relay.url, "PUT", SLOT_PATH, key, fields, age_file)
    assert answer.status == 201, (answer.status, answer.body[:300])
    return answer


def submission_meta(relay: RelayServer, blob: Path) -> dict[str, object]:
    """The ``submission.json`` of a stored submission, decrypted with the stock ``age``."""
    plaintext = relay.decrypt_with_stock_age(blob)
    with tarfile.open(fileobj=io.BytesIO(plaintext)) as archive:
        member = archive.extractfile("submission.json")
        assert member is not None
        meta = json.loads(member.read())
    assert isinstance(meta, dict)
    return meta


def files_containing(folder: Path, needles: Iterable[bytes]) -> list[str]:
    """Every file under ``folder`` holding any of ``needles`` (case-sensitive bytes)."""
    wanted = [needle for needle in needles if needle]
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {needle[:12]!r}" for needle in wanted if needle in data]
    return found


def secrets_of(keys: ConversationKeys, codename_words: Iterable[str]) -> list[bytes]:
    """What must never be stored or logged: the codename, in every case, and every key."""
    words = list(codename_words)
    phrase = " ".join(words)
    values = [phrase.encode(), phrase.upper().encode(), "+".join(words).encode()]
    for secret in (
        keys.reply_identity_secret,
        keys.slot_key,
        keys.auth_key,
        keys.delete_key,
        keys.conversation_id,
    ):
        values += [secret, secret.hex().encode()]
    values.append(str(keys.reply_recipient).encode())
    return values


NOSCRIPT_CODENAME = re.compile(
    r'<noscript>.*?<textarea id="codename" name="codename" [^>]*>([a-z\- ]+)</textarea>', re.S
)


@contextlib.contextmanager
def conversation_relay(
    base: Path, settings: dict[str, object], api_key: SigningKey
) -> Iterator[RelayServer]:
    """A running relay with a conversation salt, whose reviewer signs with ``api_key``."""
    server = new_relay(base, settings, api_key_text=api_key.public_key_text)
    ensure_conversation_salt(server.keys_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def keys_for(relay: RelayServer, words: str) -> ConversationKeys:
    """The conversation keys of the codename ``words`` (as typed) on ``relay``."""
    salt = load_conversation_salt(relay.keys_dir)
    assert salt is not None
    return derive_conversation_keys(fold_codename(words), salt)
