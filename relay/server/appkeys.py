"""Typed keys for what the aiohttp application holds (see STYLE.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from relay.config import Config
    from relay.keyring import KeyringHolder
    from relay.store import SubmissionStore

CONFIG: web.AppKey[Config] = web.AppKey("config")
STORE: web.AppKey[SubmissionStore] = web.AppKey("store")
# A holder whose `.current` Keyring is replaced on reload (SIGHUP), so that a
# removed reviewer's key stops working at once.
KEYRING: web.AppKey[KeyringHolder] = web.AppKey("keyring")
