"""The ring of reply slots and their delete tokens (docs/conversations.md, section 5).

A conversation's replies live in a ring of ``ring_size`` (M) slots; reply number
n (1, 2, 3, ... in its thread) goes to slot ``n mod M``. Byte for byte (the
slot is a 4-byte big-endian unsigned integer; docs/conversations.md "Slots"):

    slot tag          = HMAC-SHA-256(slot key, b"slot" || uint32be(n mod M))
    delete token      = HMAC-SHA-256(delete key, b"delete" || uint32be(n mod M))
    delete token hash = SHA-256(delete token)   (all the server keeps)

The server keys slots by tag (hex) and learns nothing else; a reply written to
slot s again later (n + M) replaces the older one.
"""

from __future__ import annotations

from relay.crypto import primitives

DEFAULT_RING_SIZE = 16
MAX_RING_SIZE = 1024
SLOT_TAG_LABEL = b"slot"
DELETE_TOKEN_LABEL = b"delete"


def _check_ring_size(ring_size: int) -> None:
    if not isinstance(ring_size, int) or not 1 <= ring_size <= MAX_RING_SIZE:
        raise ValueError(f"the ring size must be between 1 and {MAX_RING_SIZE}")


def slot_of_reply(n: int, ring_size: int = DEFAULT_RING_SIZE) -> int:
    """The slot reply number ``n`` (1 or more) goes to: ``n mod ring_size``."""
    _check_ring_size(ring_size)
    if not isinstance(n, int) or n < 1:
        raise ValueError("reply numbers start at 1")
    return n % ring_size


def _slot_bytes(slot: int) -> bytes:
    if not isinstance(slot, int) or not 0 <= slot < MAX_RING_SIZE:
        raise ValueError(f"a slot is between 0 and {MAX_RING_SIZE - 1}")
    return slot.to_bytes(4, "big")


def slot_tag(slot_key: bytes, slot: int) -> bytes:
    """The 32-byte tag the server files slot ``slot`` under."""
    if len(slot_key) != primitives.KEY_SIZE:
        raise ValueError("the slot key must be 32 bytes")
    return primitives.hmac_sha256(slot_key, SLOT_TAG_LABEL + _slot_bytes(slot))


def ring_tags(slot_key: bytes, ring_size: int = DEFAULT_RING_SIZE) -> list[bytes]:
    """The tags of slots 0 .. ring_size - 1, in slot order (what a source fetches)."""
    _check_ring_size(ring_size)
    return [slot_tag(slot_key, slot) for slot in range(ring_size)]


def delete_token(delete_key: bytes, slot: int) -> bytes:
    """The 32-byte proof that deletes slot ``slot`` (the source sends it)."""
    if len(delete_key) != primitives.KEY_SIZE:
        raise ValueError("the delete key must be 32 bytes")
    return primitives.hmac_sha256(delete_key, DELETE_TOKEN_LABEL + _slot_bytes(slot))


def delete_token_hash(token: bytes) -> bytes:
    """SHA-256 of a delete token: what the server keeps and compares against."""
    if len(token) != primitives.KEY_SIZE:
        raise ValueError("a delete token is 32 bytes")
    return primitives.sha256(token)
