"""Typed keys for what the aiohttp application holds (``web.AppKey``: mypy checks each use)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from relay.config import Config
    from relay.keyring import KeyringHolder
    from relay.notify.sending import Sender
    from relay.server.derivation_gate import DerivationGate
    from relay.server.receive_memory import ReceiveMemory
    from relay.store import SubmissionStore

CONFIG: web.AppKey[Config] = web.AppKey("config")
STORE: web.AppKey[SubmissionStore] = web.AppKey("store")
# A holder whose `.current` Keyring is replaced on reload (SIGHUP), so that a
# removed reviewer's key stops working at once.
KEYRING: web.AppKey[KeyringHolder] = web.AppKey("keyring")
# How many no-JS submissions may be sealed at once (config.max_concurrent_submissions);
# a received form waits for a free slot. Receiving takes none.
SUBMISSION_SLOTS: web.AppKey[asyncio.Semaphore] = web.AppKey("submission_slots")
# Form bytes held in memory by every no-JS submission being received
# (config.max_receiving_memory_bytes).
RECEIVE_MEMORY: web.AppKey[ReceiveMemory] = web.AppKey("receive_memory")
# The relay's public conversation salt (keys/conversation-salt), read once at
# start; None when the operator has not made one: conversations are then off.
CONVERSATION_SALT: web.AppKey[bytes | None] = web.AppKey("conversation_salt")
# Admission (and a short cache) for the derivations of the no-JS reply pages
# (config.max_concurrent_derivations and max_waiting_derivations): PBKDF2 costs
# about 0.15 s of CPU each.
DERIVATION_GATE: web.AppKey[DerivationGate] = web.AppKey("derivation_gate")
# Reading and decrypting a ring of replies for a no-JS reader (relay.server.codenames):
# bounded too, since keys from the gate's cache need no derivation slot.
RING_READ_SLOTS: web.AppKey[asyncio.Semaphore] = web.AppKey("ring_read_slots")
# The team's digest sender (relay.notify), present only when notify_channels_file is set.
DIGEST_SENDER: web.AppKey[Sender] = web.AppKey("digest_sender")
