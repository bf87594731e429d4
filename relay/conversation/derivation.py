"""A codename's keys: PBKDF2 then HKDF, as docs/conversations.md section 4 says.

kdf ``v1``, byte for byte (docs/conversations.md "Derivation"; the browser's twin
is relay/web/js/conversation/derive.js; tests/vectors/conversation.json pins it):

    password = the 7 indices, each as a 2-byte big-endian unsigned integer (14 bytes)
    salt     = b"tiprelay/codename/v1" || relay salt (32 bytes, public, per relay)
    ikm      = PBKDF2-HMAC-SHA-256(password, salt, 2**18 iterations, 32 bytes)
    prk      = HKDF-Extract(salt, ikm)                      (RFC 5869, SHA-256)
    reply identity secret = HKDF-Expand(prk, b"tiprelay/v1/reply-identity", 32)
    slot key              = HKDF-Expand(prk, b"tiprelay/v1/slot-key", 32)
    auth key              = HKDF-Expand(prk, b"tiprelay/v1/auth-key", 32)
    delete key            = HKDF-Expand(prk, b"tiprelay/v1/delete-key", 32)
    conversation id       = HKDF-Expand(prk, b"tiprelay/v1/conversation-id", 16)

The reply identity secret is an age X25519 identity as is (``AGE-SECRET-KEY-1``
+ bech32 of the 32 bytes; X25519 clamps it). Only ``relay.conversation.identity``
turns it into an identity; the rest of this package handles public values and
symmetric keys only. ``ReplyKeys`` is what the team needs to reply and travels
inside the encrypted ``submission.json`` (``to_fields``/``from_fields``).

A tip sent without JavaScript carries the codename itself instead
(``codename_fields``: its 7 indices, the relay salt and ``kdf``), so that the
relay acknowledges it without deriving; the team's offline machine derives
(``reply_keys_from_fields``, once per codename and process: ``ReplyKeysDeriver``).
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.conversation.codename import CODENAME_WORDS, Codename
from relay.crypto import primitives
from relay.crypto.errors import KeyFormatError
from relay.crypto.recipients import X25519Recipient
from relay.errors import TiprelayError

KDF_VERSION = "v1"
PBKDF2_ITERATIONS = 1 << 18
RELAY_SALT_SIZE = 32
KEY_SIZE = 32
CONVERSATION_ID_SIZE = 16

SALT_PREFIX = b"tiprelay/codename/v1"
LABEL_REPLY_IDENTITY = b"tiprelay/v1/reply-identity"
LABEL_SLOT_KEY = b"tiprelay/v1/slot-key"
LABEL_AUTH_KEY = b"tiprelay/v1/auth-key"
LABEL_DELETE_KEY = b"tiprelay/v1/delete-key"
LABEL_CONVERSATION_ID = b"tiprelay/v1/conversation-id"

_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_HEX_SALT = re.compile(r"[0-9a-f]{64}")
REPLY_KEY_FIELDS = frozenset(
    {"kdf", "conversation_id", "reply_recipient", "slot_key", "auth_key", "delete_key"}
)
CODENAME_FIELDS = frozenset({"kdf", "codename_indices", "relay_salt"})


class ConversationFieldsError(TiprelayError):
    """The conversation fields of this submission are damaged or of an unknown version."""


def encode_indices(codename: Codename) -> bytes:
    """The PBKDF2 password: each index as a big-endian uint16, 14 bytes in all."""
    return b"".join(index.to_bytes(2, "big") for index in codename.indices)


def codename_salt(relay_salt: bytes) -> bytes:
    """``tiprelay/codename/v1`` followed by the relay's 32-byte public salt."""
    if not isinstance(relay_salt, bytes) or len(relay_salt) != RELAY_SALT_SIZE:
        raise ValueError(f"the relay salt must be {RELAY_SALT_SIZE} bytes")
    return SALT_PREFIX + relay_salt


def make_relay_salt() -> bytes:
    """A new relay salt (made once per relay, kept and backed up with keys/)."""
    return primitives.random_bytes(RELAY_SALT_SIZE)


@dataclass(frozen=True, repr=False)
class ReplyKeys:
    """What the team needs to reply into a conversation: all but the reply identity."""

    conversation_id: bytes
    reply_recipient: X25519Recipient
    slot_key: bytes
    auth_key: bytes
    delete_key: bytes

    def __repr__(self) -> str:
        return "ReplyKeys(<secret>)"

    def to_fields(self) -> dict[str, str]:
        """The ``conversation`` object sealed into ``submission.json`` (hex, age1...)."""
        return {
            "kdf": KDF_VERSION,
            "conversation_id": self.conversation_id.hex(),
            "reply_recipient": str(self.reply_recipient),
            "slot_key": self.slot_key.hex(),
            "auth_key": self.auth_key.hex(),
            "delete_key": self.delete_key.hex(),
        }

    @classmethod
    def from_fields(cls, fields: Any) -> ReplyKeys:
        """Parse ``to_fields()``'s output; ConversationFieldsError if anything is off."""
        if not isinstance(fields, dict) or set(fields) != REPLY_KEY_FIELDS:
            raise ConversationFieldsError
        if fields["kdf"] != KDF_VERSION or not all(isinstance(v, str) for v in fields.values()):
            raise ConversationFieldsError
        keys = [fields[name] for name in ("slot_key", "auth_key", "delete_key")]
        if not all(_HEX_KEY.fullmatch(k) for k in keys):
            raise ConversationFieldsError
        if not _HEX_ID.fullmatch(fields["conversation_id"]):
            raise ConversationFieldsError
        try:
            recipient = X25519Recipient.parse(fields["reply_recipient"])
        except KeyFormatError:
            raise ConversationFieldsError from None
        slot_key, auth_key, delete_key = (bytes.fromhex(k) for k in keys)
        return cls(bytes.fromhex(fields["conversation_id"]), recipient, slot_key, auth_key,
                   delete_key)  # fmt: skip


@dataclass(frozen=True, repr=False)
class ConversationKeys:
    """Everything one codename gives, on one relay."""

    reply_identity_secret: bytes
    """32 bytes: the age X25519 identity that opens replies (see ``identity``)."""
    slot_key: bytes
    auth_key: bytes
    delete_key: bytes
    conversation_id: bytes

    def __repr__(self) -> str:
        return "ConversationKeys(<secret>)"

    @property
    def reply_recipient(self) -> X25519Recipient:
        """The public key replies are encrypted to."""
        return X25519Recipient(primitives.x25519_base(self.reply_identity_secret))

    def reply_keys(self) -> ReplyKeys:
        """The part the team gets (sealed into a tip or follow-up)."""
        return ReplyKeys(self.conversation_id, self.reply_recipient, self.slot_key,
                         self.auth_key, self.delete_key)  # fmt: skip


def derive_conversation_keys(codename: Codename, relay_salt: bytes) -> ConversationKeys:
    """The keys of ``codename`` on the relay whose public salt is ``relay_salt`` (~0.2 s)."""
    salt = codename_salt(relay_salt)
    ikm = primitives.pbkdf2_sha256(encode_indices(codename), salt, PBKDF2_ITERATIONS, KEY_SIZE)
    prk = primitives.hkdf_extract(salt, ikm)
    return ConversationKeys(
        reply_identity_secret=primitives.hkdf_expand(prk, LABEL_REPLY_IDENTITY, KEY_SIZE),
        slot_key=primitives.hkdf_expand(prk, LABEL_SLOT_KEY, KEY_SIZE),
        auth_key=primitives.hkdf_expand(prk, LABEL_AUTH_KEY, KEY_SIZE),
        delete_key=primitives.hkdf_expand(prk, LABEL_DELETE_KEY, KEY_SIZE),
        conversation_id=primitives.hkdf_expand(prk, LABEL_CONVERSATION_ID, CONVERSATION_ID_SIZE),
    )


def codename_fields(codename: Codename, relay_salt: bytes) -> dict[str, object]:
    """The ``conversation`` object of a tip sent without JavaScript: the codename itself.

    ``{"kdf": "v1", "codename_indices": [7 ints], "relay_salt": "<64 hex>"}``: the
    relay seals this instead of deriving (docs/conversations.md section 4).
    """
    codename_salt(relay_salt)  # checks its size
    return {
        "kdf": KDF_VERSION,
        "codename_indices": list(codename.indices),
        "relay_salt": relay_salt.hex(),
    }


def parse_codename_fields(fields: Any) -> tuple[Codename, bytes]:
    """The codename and relay salt of ``codename_fields()``'s output, strictly.

    ConversationFieldsError unless it has exactly those three keys, ``kdf`` ``v1``,
    7 integers (not booleans) below 7776, and 64 lower-case hex digits of salt.
    """
    if not isinstance(fields, dict) or set(fields) != CODENAME_FIELDS:
        raise ConversationFieldsError
    indices, salt = fields["codename_indices"], fields["relay_salt"]
    if fields["kdf"] != KDF_VERSION or not isinstance(indices, list):
        raise ConversationFieldsError
    if len(indices) != CODENAME_WORDS or not all(type(i) is int for i in indices):
        raise ConversationFieldsError
    if not isinstance(salt, str) or not _HEX_SALT.fullmatch(salt):
        raise ConversationFieldsError
    try:
        codename = Codename(tuple(indices))
    except ValueError:
        raise ConversationFieldsError from None
    return codename, bytes.fromhex(salt)


class ReplyKeysDeriver:
    """``reply_keys_from_fields`` with a memory: each distinct codename is derived once.

    A bundle of thousands of follow-ups sent without JavaScript costs one PBKDF2
    (~0.2 s) per conversation, not per tip. The cache lives in this object only
    (one process, one run); it is never written anywhere.
    """

    MAX_REMEMBERED = 4096
    """Codenames kept (a few hundred bytes each): a flood of tips each with a codename
    of its own must not grow a reviewer's decrypt without bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._derived: collections.OrderedDict[tuple[tuple[int, ...], bytes], ReplyKeys] = (
            collections.OrderedDict()
        )
        self.derivations = 0
        """How many PBKDF2 runs this deriver made (one per distinct codename)."""

    def __repr__(self) -> str:
        return f"ReplyKeysDeriver({len(self._derived)} derived)"

    def reply_keys(self, fields: Any) -> ReplyKeys:
        """The reply keys of a tip's ``conversation`` object, in either form."""
        if isinstance(fields, Mapping) and set(fields) == CODENAME_FIELDS:
            codename, salt = parse_codename_fields(dict(fields))
            key = (codename.indices, salt)
            with self._lock:
                known = self._derived.get(key)
                if known is not None:
                    self._derived.move_to_end(key)
            if known is None:
                known = derive_conversation_keys(codename, salt).reply_keys()
                with self._lock:
                    self._derived[key] = known
                    while len(self._derived) > self.MAX_REMEMBERED:
                        self._derived.popitem(last=False)
                    self.derivations += 1
            return known
        return ReplyKeys.from_fields(fields)


process_deriver = ReplyKeysDeriver()
"""The deriver ``reply_keys_from_fields`` uses (one per process: one offline run)."""


def reply_keys_from_fields(fields: Any) -> ReplyKeys:
    """The reply keys a tip's ``conversation`` object gives: derived fields as they are
    (the browser derived), or a sealed codename, derived here (once per process).

    ConversationFieldsError when it is neither form, exactly.
    """
    return process_deriver.reply_keys(fields)
