// A codename's keys in the browser: the same bytes as
// relay/conversation/derivation.py (kdf v1, docs/conversations.md "Derivation"),
// with WebCrypto's native PBKDF2 and HKDF, so it stays fast without a JIT:
//
//   password = the 7 indices as 2-byte big-endian integers (14 bytes)
//   salt     = "tiprelay/codename/v1" || relay salt (32 bytes)
//   ikm      = PBKDF2-HMAC-SHA-256(password, salt, 2^18, 32 bytes)
//   each key = HKDF-SHA-256(ikm, salt, label) = HKDF-Expand(HKDF-Extract(salt, ikm), label)

import { identityToRecipient } from "age-encryption";
import { bech32Encode } from "./bech32.js";

export const KDF_VERSION = "v1";
export const PBKDF2_ITERATIONS = 2 ** 18;
export const RELAY_SALT_SIZE = 32;
const encoder = new TextEncoder();
const SALT_PREFIX = encoder.encode("tiprelay/codename/v1");
const LABELS = {
  replyIdentitySecret: ["tiprelay/v1/reply-identity", 32],
  slotKey: ["tiprelay/v1/slot-key", 32],
  authKey: ["tiprelay/v1/auth-key", 32],
  deleteKey: ["tiprelay/v1/delete-key", 32],
  conversationId: ["tiprelay/v1/conversation-id", 16],
};

/** The PBKDF2 password: each index as a big-endian uint16. */
export function encodeIndices(indices) {
  if (indices.length !== 7 || !indices.every((i) => Number.isInteger(i) && i >= 0 && i < 7776)) {
    throw new RangeError("a codename is 7 indices below 7776");
  }
  const out = new Uint8Array(14);
  indices.forEach((index, i) => {
    out[2 * i] = index >> 8;
    out[2 * i + 1] = index & 0xff;
  });
  return out;
}

/** "tiprelay/codename/v1" followed by the relay's 32-byte public salt. */
export function codenameSalt(relaySalt) {
  if (!(relaySalt instanceof Uint8Array) || relaySalt.length !== RELAY_SALT_SIZE) {
    throw new RangeError("the relay salt must be 32 bytes");
  }
  const salt = new Uint8Array(SALT_PREFIX.length + RELAY_SALT_SIZE);
  salt.set(SALT_PREFIX);
  salt.set(relaySalt, SALT_PREFIX.length);
  return salt;
}

/** PBKDF2-HMAC-SHA-256(encodeIndices(indices), salt, 2^18) as 32 bytes. */
export async function codenameIkm(indices, salt) {
  const password = await crypto.subtle.importKey("raw", encodeIndices(indices), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS },
    password,
    256,
  );
  return new Uint8Array(bits);
}

/** The age identity string (AGE-SECRET-KEY-1...) of a 32-byte reply identity secret. */
export function replyIdentityString(secret) {
  return bech32Encode("age-secret-key-", secret).toUpperCase();
}

/**
 * The keys of a codename (7 indices) on the relay whose public salt is
 * `relaySalt`: {replyIdentitySecret, slotKey, authKey, deleteKey, conversationId}
 * (Uint8Arrays), replyIdentity (AGE-SECRET-KEY-1...) and replyRecipient (age1...).
 */
export async function deriveConversationKeys(indices, relaySalt) {
  const salt = codenameSalt(relaySalt);
  const ikm = await crypto.subtle.importKey("raw", await codenameIkm(indices, salt), "HKDF", false, [
    "deriveBits",
  ]);
  const keys = {};
  for (const [name, [label, size]] of Object.entries(LABELS)) {
    const bits = await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt, info: encoder.encode(label) },
      ikm,
      size * 8,
    );
    keys[name] = new Uint8Array(bits);
  }
  keys.replyIdentity = replyIdentityString(keys.replyIdentitySecret);
  keys.replyRecipient = await identityToRecipient(keys.replyIdentity);
  return keys;
}

/** Lower-case hex of bytes (what submission.json and the vectors carry). */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The `conversation` object sealed into submission.json for the team, as
 * relay/conversation/derivation.py's ReplyKeys.to_fields() writes it.
 */
export function conversationFields(keys) {
  return {
    kdf: KDF_VERSION,
    conversation_id: toHex(keys.conversationId),
    reply_recipient: keys.replyRecipient,
    slot_key: toHex(keys.slotKey),
    auth_key: toHex(keys.authKey),
    delete_key: toHex(keys.deleteKey),
  };
}
