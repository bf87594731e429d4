// Bech32 (BIP 173) encoding, as age writes keys: what relay/crypto/bech32.py
// does, encode only (the reply identity is made here, never parsed).

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values) {
  let checksum = 1;
  for (const value of values) {
    const top = checksum >>> 25;
    checksum = (((checksum & 0x1ffffff) << 5) ^ value) >>> 0;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) checksum = (checksum ^ GENERATOR[i]) >>> 0;
    }
  }
  return checksum;
}

function toFiveBits(bytes) {
  const out = [];
  let accumulator = 0;
  let bits = 0;
  for (const byte of bytes) {
    accumulator = ((accumulator << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push((accumulator >>> bits) & 31);
    }
  }
  if (bits > 0) out.push((accumulator << (5 - bits)) & 31);
  return out;
}

/** Bech32 of `bytes` under the human-readable part `hrp` (lower case). */
export function bech32Encode(hrp, bytes) {
  const hrpLower = hrp.toLowerCase();
  const data = toFiveBits(bytes);
  const expanded = [];
  for (const char of hrpLower) expanded.push(char.charCodeAt(0) >> 5);
  expanded.push(0);
  for (const char of hrpLower) expanded.push(char.charCodeAt(0) & 31);
  const checksumInput = [...expanded, ...data, 0, 0, 0, 0, 0, 0];
  const checksum = polymod(checksumInput) ^ 1;
  const checksumDigits = [];
  for (let i = 0; i < 6; i++) checksumDigits.push((checksum >>> (5 * (5 - i))) & 31);
  return hrpLower + "1" + [...data, ...checksumDigits].map((d) => CHARSET[d]).join("");
}
