// The OpenPGP side of the age header, bundled apart (dist/openpgp-wrap.js, an
// ES module) because OpenPGP.js is several times the size of the rest of the
// page's script: the page imports it only when the relay has OpenPGP
// reviewers (openpgp_loader.js), and age_header.js calls it for each one.
//
// A reviewer's stanza body is what `gpg --encrypt --compress-algo none` writes
// for one key: one version 3 PKESK packet naming the key id of the key's
// encryption subkey, then one SEIPD version 1 packet (tag 18) holding the
// 16-byte file key as literal data. The relay reads exactly that shape
// (relay/crypto/openpgp_packets.py) and refuses anything else, so this module
// reads back what OpenPGP.js wrote and refuses to hand over anything else.
//
// Works with the JIT off: OpenPGP.js uses WebCrypto and native BigInt, no
// WebAssembly.

import {
  config as defaultConfig,
  createMessage,
  encrypt,
  enums,
  PublicKeyEncryptedSessionKeyPacket,
  readKeys,
  readMessage,
  SymEncryptedIntegrityProtectedDataPacket,
} from "openpgp/lightweight";

const FILE_KEY_BYTES = 16;
// relay/crypto/openpgp_packets.py MAX_MESSAGE_BYTES: the relay refuses more.
const MAX_MESSAGE_BYTES = 4096;
// relay/crypto/openpgp_keys.py MAX_PUBLIC_KEY_BYTES: the relay's keys/ holds no larger key.
const MAX_ARMORED_KEY_CHARS = 64 * 1024;
const FINGERPRINT = /^[0-9A-F]{40}$/;

// Whole (the key methods below take it as it is, without the defaults).
const CONFIG = {
  ...defaultConfig,
  // Version 1 SEIPD (tag 18) and a version 3 PKESK, as gpg writes them. (The
  // session key passed below decides this whatever the key advertises:
  // OpenPGP.js would otherwise pick SEIPD v2 for a key announcing it.)
  aeadProtect: false,
  // 16 random bytes do not compress; a compressed packet is not what we read.
  preferredCompressionAlgorithm: enums.compression.uncompressed,
  // Name the recipient's key id: the relay checks it (never a wildcard).
  // (`wildcard: false` below too.)
  v6Keys: false,
};

function fail(reason) {
  return new Error(`OpenPGP wrap: ${reason}`);
}

/**
 * The reviewer's key, read from the armored block the page carries, checked
 * against the fingerprint the recipient list (and so the recipient-set
 * fingerprint the source can compare) names: a block that holds another key
 * is refused, whatever the server put there.
 */
async function reviewerKey(armoredKey, fingerprint) {
  if (typeof armoredKey !== "string" || armoredKey.length > MAX_ARMORED_KEY_CHARS) {
    throw fail(`the key for ${fingerprint} is missing or too large`);
  }
  const keys = await readKeys({ armoredKeys: armoredKey, config: CONFIG });
  if (keys.length !== 1) {
    throw fail(`the key block for ${fingerprint} holds ${keys.length} keys, not 1`);
  }
  const [key] = keys;
  if (key.isPrivate()) {
    throw fail(`the key block for ${fingerprint} holds secret key material`);
  }
  if (key.keyPacket.version !== 4) {
    throw fail(`the key ${fingerprint} is a version ${key.keyPacket.version} key, not 4`);
  }
  if (key.getFingerprint().toUpperCase() !== fingerprint) {
    throw fail(`the key block named ${fingerprint} holds key ${key.getFingerprint().toUpperCase()}`);
  }
  return key;
}

/** Refuse anything but one v3 PKESK to `keyId`, then one SEIPD v1, within the relay's bound. */
async function checkShape(message, keyId) {
  if (message.length > MAX_MESSAGE_BYTES) {
    throw fail(`the message is ${message.length} bytes, more than ${MAX_MESSAGE_BYTES}`);
  }
  const { packets } = await readMessage({ binaryMessage: message, config: CONFIG });
  const [session, data] = packets;
  if (
    packets.length !== 2 ||
    !(session instanceof PublicKeyEncryptedSessionKeyPacket) ||
    session.version !== 3 ||
    !(data instanceof SymEncryptedIntegrityProtectedDataPacket) ||
    data.version !== 1
  ) {
    throw fail("OpenPGP.js did not write one v3 PKESK and one v1 SEIPD packet");
  }
  if (session.publicKeyID.isWildcard() || !session.publicKeyID.equals(keyId)) {
    throw fail("the message does not name the key's encryption subkey");
  }
}

/**
 * The body of a `tiprelay-openpgp` stanza: `fileKey` (16 bytes) encrypted to
 * the OpenPGP key `armoredKey`, which must be the key `fingerprint` (40
 * upper-case hex digits) names.
 */
export async function wrapFileKeyForOpenpgp(fileKey, armoredKey, fingerprint) {
  if (!(fileKey instanceof Uint8Array) || fileKey.length !== FILE_KEY_BYTES) {
    throw fail("an age file key is 16 bytes");
  }
  if (typeof fingerprint !== "string" || !FINGERPRINT.test(fingerprint)) {
    throw fail("a fingerprint is 40 upper-case hex digits");
  }
  const key = await reviewerKey(armoredKey, fingerprint);
  const encryptionKey = await key.getEncryptionKey(undefined, undefined, undefined, CONFIG);
  // Our own session key, without an AEAD algorithm: that is what makes
  // OpenPGP.js write SEIPD v1 and PKESK v3. AES-256 is what gpg itself picks
  // for keys made with its default preferences, and every OpenPGP
  // implementation that can decrypt at all has it.
  const sessionKey = {
    data: crypto.getRandomValues(new Uint8Array(32)),
    algorithm: "aes256",
  };
  // The literal packet's date is the epoch: the source's clock is nobody's business.
  const literal = await createMessage({ binary: fileKey, format: "binary", date: new Date(0) });
  const message = await encrypt({
    message: literal,
    encryptionKeys: key,
    sessionKey,
    wildcard: false,
    format: "binary",
    config: CONFIG,
  });
  sessionKey.data.fill(0);
  await checkShape(message, encryptionKey.getKeyID());
  return message;
}
