"""The reply identity, the one secret key a codename gives, and opening replies with it.

Kept apart so that an import contract can name the few modules allowed to hold
a source's reply identity: the source's own browser does this in JS; on the
server, only the no-JS "read replies" path may import this module.
"""

from __future__ import annotations

import io

from relay.conversation.derivation import ConversationKeys
from relay.conversation.reply import (
    Reply,
    ReplyLimits,
    ReplyNotAuthenticError,
    ReplyTooLargeError,
    read_reply,
)
from relay.conversation.slots import DEFAULT_RING_SIZE
from relay.crypto.decrypt import open_decrypted
from relay.crypto.errors import AgeError
from relay.crypto.identities import X25519Identity


def reply_identity(keys: ConversationKeys) -> X25519Identity:
    """The age X25519 identity that decrypts this conversation's replies."""
    return X25519Identity(keys.reply_identity_secret)


def open_reply(
    ciphertext: bytes,
    keys: ConversationKeys,
    slot: int,
    *,
    ring_size: int = DEFAULT_RING_SIZE,
    limits: ReplyLimits | None = None,
) -> Reply:
    """Decrypt the age file from slot ``slot`` and check it (``read_reply``), in memory.

    A ciphertext that does not open with the reply identity raises
    ReplyNotAuthenticError like a bad MAC: a page counts it and shows nothing.
    """
    limits = limits or ReplyLimits()
    try:
        with open_decrypted(io.BytesIO(ciphertext), [reply_identity(keys)]) as plaintext:
            data = plaintext.read(limits.max_reply_bytes + 1)
            if len(data) > limits.max_reply_bytes:
                raise ReplyTooLargeError
    except AgeError:
        raise ReplyNotAuthenticError from None
    return read_reply(data, auth_key=keys.auth_key, conversation_id=keys.conversation_id,
                      slot=slot, ring_size=ring_size, limits=limits)  # fmt: skip
