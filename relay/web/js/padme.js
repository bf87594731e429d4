// Padmé padding (Nikitin et al., PETS 2019), the same function as
// relay/crypto/padding.py. Written with plain arithmetic, not bit operators:
// JS bit operators work on 32 bits and submissions reach 2 GiB and beyond.

function bitLength(n) {
  // Exact for every safe integer (n <= 2^53).
  return n === 0 ? 0 : n.toString(2).length;
}

/** The Padmé-padded length for a payload of `length` bytes. */
export function padmeLength(length) {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError("length must be a non-negative safe integer");
  }
  if (length < 2) {
    return length;
  }
  const exponent = bitLength(length) - 1;
  const significantBits = bitLength(exponent);
  const lowBits = exponent - significantBits;
  const unit = 2 ** lowBits;
  return Math.ceil(length / unit) * unit;
}
