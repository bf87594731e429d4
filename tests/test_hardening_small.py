"""Small hardening fixes from issue 13: strict numbers, ..."""

from __future__ import annotations

import pytest

from relay.digits import parse_ascii_decimal
from relay.manifest import SubmissionInfo

NOT_ASCII_DIGITS = ["²", "٣", "３", "1²", "१२", "", " 1", "1 ", "+1", "-1", "1_000", "1.0", "1\n"]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_only_ascii_digits_are_a_number(text: str) -> None:
    assert parse_ascii_decimal(text, max_digits=20) is None
    assert parse_ascii_decimal(text.encode("utf-8"), max_digits=20) is None


def test_ascii_digits_are_read_up_to_the_digit_limit() -> None:
    assert parse_ascii_decimal("0", max_digits=1) == 0
    assert parse_ascii_decimal(b"1000", max_digits=4) == 1000
    assert parse_ascii_decimal("10000", max_digits=4) is None


def test_a_manifest_day_in_other_digits_is_refused() -> None:
    entry = {"id": "a" * 32, "day": "٢٠٢٦-٠١-٠٢", "size": 1, "sha256": "0" * 64,
             "sealed_by": "browser"}
    with pytest.raises(ValueError, match="no valid day"):
        SubmissionInfo.from_json(entry)
    entry["day"] = "2026-01-02"
    assert SubmissionInfo.from_json(entry).day == "2026-01-02"
