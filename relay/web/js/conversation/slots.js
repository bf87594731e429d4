// The ring of reply slots, as relay/conversation/slots.py (docs/conversations.md
// "Slots"): tag = HMAC-SHA-256(slot key, "slot" || uint32be(n mod M)), delete
// token = HMAC-SHA-256(delete key, "delete" || uint32be(n mod M)), and the
// server keeps SHA-256(delete token).

export const DEFAULT_RING_SIZE = 16;
export const MAX_RING_SIZE = 1024;
const encoder = new TextEncoder();

function checkRingSize(ringSize) {
  if (!Number.isInteger(ringSize) || ringSize < 1 || ringSize > MAX_RING_SIZE) {
    throw new RangeError(`the ring size must be between 1 and ${MAX_RING_SIZE}`);
  }
}

/** The slot reply number `n` (1 or more) goes to. */
export function slotOfReply(n, ringSize = DEFAULT_RING_SIZE) {
  checkRingSize(ringSize);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError("reply numbers start at 1");
  return n % ringSize;
}

function labelled(label, slot) {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_RING_SIZE) {
    throw new RangeError("slot out of range");
  }
  const prefix = encoder.encode(label);
  const out = new Uint8Array(prefix.length + 4);
  out.set(prefix);
  new DataView(out.buffer).setUint32(prefix.length, slot, false);
  return out;
}

/** HMAC-SHA-256 of `message` under a raw 32-byte key. */
export async function hmacSha256(key, message) {
  if (key.length !== 32) throw new RangeError("HMAC keys here are 32 bytes");
  const imported = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, message));
}

/** The 32-byte tag the server files slot `slot` under. */
export function slotTag(slotKey, slot) {
  return hmacSha256(slotKey, labelled("slot", slot));
}

/** The tags of slots 0 .. ringSize - 1, in slot order. */
export function ringTags(slotKey, ringSize = DEFAULT_RING_SIZE) {
  checkRingSize(ringSize);
  return Promise.all(Array.from({ length: ringSize }, (_, slot) => slotTag(slotKey, slot)));
}

/** The 32-byte proof that deletes slot `slot`. */
export function deleteToken(deleteKey, slot) {
  return hmacSha256(deleteKey, labelled("delete", slot));
}

/** SHA-256 of a delete token (what the server keeps). */
export async function deleteTokenHash(token) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", token));
}
