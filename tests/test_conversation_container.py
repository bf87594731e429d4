"""The conversation fields travel inside the encrypted submission.json (issue 9)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relay.container import build_archive, extract_submission
from relay.conversation.codename import generate_codename
from relay.conversation.derivation import ReplyKeys, derive_conversation_keys, make_relay_salt
from relay.errors import ContainerError


def test_a_tip_with_a_codename_carries_the_reply_keys(tmp_path: Path) -> None:
    keys = derive_conversation_keys(generate_codename(), make_relay_salt()).reply_keys()
    archive = build_archive("help", conversation=keys.to_fields(), sealed_by="browser")
    extracted = extract_submission(io.BytesIO(archive), tmp_path / "tip")
    assert extracted.meta["conversation"] == keys.to_fields()
    assert ReplyKeys.from_fields(extracted.meta["conversation"]).to_fields() == keys.to_fields()


def test_a_one_off_tip_has_no_conversation(tmp_path: Path) -> None:
    extracted = extract_submission(io.BytesIO(build_archive("once")), tmp_path / "tip")
    assert "conversation" not in extracted.meta


def test_conversation_fields_must_be_strings() -> None:
    with pytest.raises(ContainerError, match="conversation fields"):
        build_archive("x", conversation={"kdf": 1})  # type: ignore[dict-item]
