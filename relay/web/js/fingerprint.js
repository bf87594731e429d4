// The recipient-set fingerprint shown to the source; the same definition as
// relay/fingerprint.py (tests/test_browser_units.py proves them equal):
// unique recipients, sorted by bytes, joined with "\n", SHA-256, first 10 bytes,
// 20 lower-case hex digits in 5 groups of 4. Pure JS (noble), so it works
// without WebCrypto and outside secure contexts.
import { sha256 } from "@noble/hashes/sha2.js";

const FINGERPRINT_BYTES = 10;
const GROUP_LENGTH = 4;

function compareBytes(a, b) {
  // Recipients (age1…, openpgp:<FPR>) are ASCII, where UTF-16 code-unit order is byte order;
  // compare explicitly anyway so the definition never depends on locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The short, human-comparable fingerprint of a set of recipients (`age1…`, `openpgp:<FPR>`). */
export function recipientSetFingerprint(recipients) {
  const unique = [...new Set(recipients.map(String))].sort(compareBytes);
  if (unique.length === 0) {
    throw new Error("a fingerprint needs at least one recipient");
  }
  const digest = sha256(new TextEncoder().encode(unique.join("\n")));
  const hex = Array.from(digest.subarray(0, FINGERPRINT_BYTES), (byte) =>
    byte.toString(16).padStart(2, "0"),
  ).join("");
  const groups = [];
  for (let i = 0; i < hex.length; i += GROUP_LENGTH) {
    groups.push(hex.slice(i, i + GROUP_LENGTH));
  }
  return groups.join(" ");
}
