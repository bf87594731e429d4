"""Bech32 (BIP 173) as age uses it for keys: no length limit, no mixed case."""

from __future__ import annotations

from .errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _expand_hrp(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    accumulator = 0
    bits = 0
    result = []
    max_value = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & max_value)
    if pad:
        if bits:
            result.append((accumulator << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (accumulator << (to_bits - bits)) & max_value:
        raise KeyFormatError("The key has invalid padding bits.")
    return result


def encode(hrp: str, data: bytes) -> str:
    """Bech32-encode ``data`` under the lower-case human-readable part ``hrp``."""
    words = _convert_bits(data, 8, 5, pad=True)
    values = _expand_hrp(hrp) + words
    checksum = _polymod([*values, 0, 0, 0, 0, 0, 0]) ^ 1
    tail = [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + tail)


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string to (lower-case hrp, data); KeyFormatError if invalid."""
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("The key mixes upper and lower case.")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise KeyFormatError("The key contains invalid characters.")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise KeyFormatError("The key is not valid Bech32.")
    hrp, rest = text[:separator], text[separator + 1 :]
    try:
        words = [_CHARSET_INDEX[c] for c in rest]
    except KeyError as exc:
        raise KeyFormatError("The key contains invalid characters.") from exc
    if _polymod(_expand_hrp(hrp) + words) != 1:
        raise KeyFormatError("The key's checksum is wrong (a typo?).")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))
