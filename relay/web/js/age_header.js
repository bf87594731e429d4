// The age v1 header for a new file: a fresh 16-byte file key wrapped to every
// recipient by typage's own X25519 recipient, the stanzas encoded by typage's
// own header encoder, and the header MAC (HMAC-SHA-256 under HKDF(file key,
// "header")). The payload (stream_payload.js) is sealed apart, in workers,
// which typage's one-piece Encrypter cannot do.

import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
// Deep imports of typage's own modules (the package exports neither): the same
// files its index imports, so forceWebCryptoOff (seal.js) applies here too.
import { encodeHeader, encodeHeaderNoMAC } from "../../../node_modules/age-encryption/dist/format.js";
import { X25519Recipient } from "../../../node_modules/age-encryption/dist/recipients.js";

const HEADER_LABEL = new TextEncoder().encode("header");

function randomBytes(count) {
  return crypto.getRandomValues(new Uint8Array(count));
}

/** A new file's header for `recipients` (age1… X25519 strings): `{header, fileKey, nonce}`. */
export async function newAgeHeader(recipients) {
  const fileKey = randomBytes(16);
  const stanzas = [];
  for (const recipient of recipients) {
    if (typeof recipient !== "string" || recipient.startsWith("age1pq1") || recipient.startsWith("age1tag")) {
      throw new Error("only X25519 (age1…) recipients are supported");
    }
    stanzas.push(...(await new X25519Recipient(recipient).wrapFileKey(fileKey)));
  }
  const macKey = hkdf(sha256, fileKey, undefined, HEADER_LABEL, 32);
  const header = encodeHeader(stanzas, hmac(sha256, macKey, encodeHeaderNoMAC(stanzas)));
  return { header, fileKey, nonce: randomBytes(16) };
}
