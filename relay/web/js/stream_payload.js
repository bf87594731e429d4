// The age v1 payload (age-encryption.org/v1, "STREAM"): the file key and the
// 16-byte nonce give the payload key (HKDF-SHA-256, label "payload"); the
// plaintext is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305 under
// a 12-byte nonce: an 11-byte big-endian chunk counter, then 0x01 for the last
// chunk and 0x00 for every other. Chunks depend on nothing but their index, so
// any run of them can be sealed anywhere (a Web Worker) and joined in order.
// tests/js/stream_payload_vectors.mjs re-seals the C2SP CCTV vectors' payloads
// with this module and compares byte for byte.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const PLAINTEXT_CHUNK_BYTES = 64 * 1024;
export const TAG_BYTES = 16;
const PAYLOAD_LABEL = new TextEncoder().encode("payload");
const MAX_CHUNK_INDEX = 2 ** 52; // far below 2^88, and exact in a double

/** The payload key: HKDF-SHA-256(file key, salt = nonce, info = "payload"). */
export function payloadKey(fileKey, nonce) {
  if (fileKey.length !== 16 || nonce.length !== 16) {
    throw new Error("age payload: the file key and the nonce are 16 bytes each");
  }
  return hkdf(sha256, fileKey, nonce, PAYLOAD_LABEL, 32);
}

/** How many chunks a payload of `plaintextLength` bytes has (an empty one has one). */
export function chunkCount(plaintextLength) {
  return Math.max(1, Math.ceil(plaintextLength / PLAINTEXT_CHUNK_BYTES));
}

/** The payload's exact length for `plaintextLength` bytes of plaintext. */
export function payloadLength(plaintextLength) {
  return plaintextLength + TAG_BYTES * chunkCount(plaintextLength);
}

function chunkNonce(index, last) {
  const nonce = new Uint8Array(12);
  let rest = index;
  for (let position = 10; position >= 0 && rest > 0; position--) {
    nonce[position] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Seal consecutive chunks: `plaintext` holds chunk `firstIndex` onwards (whole
 * 64 KiB chunks, except that the last chunk of the payload may be shorter);
 * `lastIndex` is the index of the payload's final chunk. Returns the sealed
 * chunks, joined.
 */
export function sealChunks(key, plaintext, firstIndex, lastIndex) {
  const count = chunkCount(plaintext.length);
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 0 || lastIndex > MAX_CHUNK_INDEX) {
    throw new Error("age payload: chunk index out of range");
  }
  if (firstIndex + count - 1 > lastIndex) {
    throw new Error("age payload: more chunks than the payload has");
  }
  if (firstIndex + count - 1 < lastIndex && plaintext.length % PLAINTEXT_CHUNK_BYTES !== 0) {
    throw new Error("age payload: only the final chunk may be short");
  }
  const out = new Uint8Array(plaintext.length + TAG_BYTES * count);
  for (let i = 0; i < count; i++) {
    const index = firstIndex + i;
    const start = i * PLAINTEXT_CHUNK_BYTES;
    const piece = plaintext.subarray(start, start + PLAINTEXT_CHUNK_BYTES);
    const sealed = chacha20poly1305(key, chunkNonce(index, index === lastIndex)).encrypt(piece);
    out.set(sealed, start + TAG_BYTES * i);
  }
  return out;
}
