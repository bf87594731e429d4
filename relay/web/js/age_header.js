// The age v1 header for a new file: a fresh 16-byte file key wrapped to every
// recipient (age1… strings by typage's own X25519 recipient; `openpgp:<FPR>`
// reviewers by OpenPGP.js, in a `tiprelay-openpgp` stanza, openpgp_wrap.js),
// the stanzas encoded by typage's own header encoder, and the header MAC
// (HMAC-SHA-256 under HKDF(file key, "header")). The payload
// (stream_payload.js) is sealed apart, in workers, which typage's one-piece
// Encrypter cannot do.

import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
// Deep imports of typage's own modules (the package exports neither): the same
// files its index imports, so forceWebCryptoOff (seal.js) applies here too.
import { encodeHeader, encodeHeaderNoMAC, Stanza } from "../../../node_modules/age-encryption/dist/format.js";
import { X25519Recipient } from "../../../node_modules/age-encryption/dist/recipients.js";
import { loadOpenpgpWrap } from "./openpgp_loader.js";

const HEADER_LABEL = new TextEncoder().encode("header");
// relay/fingerprint.py and relay/crypto/openpgp_keys.py: how an OpenPGP reviewer
// is named in the recipient list, and the stanza type their file key goes in.
const OPENPGP_PREFIX = "openpgp:";
const OPENPGP_STANZA_TYPE = "tiprelay-openpgp";
const FINGERPRINT = /^[0-9A-F]{40}$/;

function randomBytes(count) {
  return crypto.getRandomValues(new Uint8Array(count));
}

function isX25519Recipient(recipient) {
  return recipient.startsWith("age1") && !recipient.startsWith("age1pq1") && !recipient.startsWith("age1tag");
}

/**
 * A new file's header: `{header, fileKey, nonce}`. `recipients` are the page's
 * recipient strings: X25519 `age1…` ones, and `openpgp:<FINGERPRINT>` ones
 * whose armored public keys `openpgpKeys` maps by fingerprint. The OpenPGP
 * wrapper is loaded (`loadWrap`) only when there is an OpenPGP recipient.
 */
export async function newAgeHeader(recipients, { openpgpKeys = {}, loadWrap = loadOpenpgpWrap } = {}) {
  const fileKey = randomBytes(16);
  const stanzas = [];
  let openpgp = null;
  for (const recipient of recipients) {
    if (typeof recipient === "string" && recipient.startsWith(OPENPGP_PREFIX)) {
      const fingerprint = recipient.slice(OPENPGP_PREFIX.length);
      if (!FINGERPRINT.test(fingerprint)) {
        throw new Error(`not an OpenPGP fingerprint: ${fingerprint}`);
      }
      const armoredKey = Object.hasOwn(openpgpKeys, fingerprint) ? openpgpKeys[fingerprint] : null;
      if (typeof armoredKey !== "string") {
        throw new Error(`the page carries no OpenPGP key for ${fingerprint}`);
      }
      openpgp ??= await loadWrap();
      const body = await openpgp.wrapFileKeyForOpenpgp(fileKey, armoredKey, fingerprint);
      stanzas.push(new Stanza([OPENPGP_STANZA_TYPE, fingerprint], body));
    } else if (typeof recipient === "string" && isX25519Recipient(recipient)) {
      stanzas.push(...(await new X25519Recipient(recipient).wrapFileKey(fileKey)));
    } else {
      throw new Error("only X25519 (age1…) and openpgp: recipients are supported");
    }
  }
  const macKey = hkdf(sha256, fileKey, undefined, HEADER_LABEL, 32);
  const header = encodeHeader(stanzas, hmac(sha256, macKey, encodeHeaderNoMAC(stanzas)));
  return { header, fileKey, nonce: randomBytes(16) };
}
