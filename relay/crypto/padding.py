"""Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted
Files and Communication with PURBs", PETS 2019).

A length L is rounded up so that only O(log log L) bits of it remain: the
overhead is at most about 12 %, and far fewer distinct sizes exist.
"""

from __future__ import annotations


def padme_length(length: int) -> int:
    """The Padmé-padded length for a payload of ``length`` bytes."""
    if length < 0:
        raise ValueError("length must not be negative")
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # floor(log2(L))
    significant_bits = exponent.bit_length()  # floor(log2(E)) + 1
    low_bits = exponent - significant_bits
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask
