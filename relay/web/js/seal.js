// Sealing a submission in the browser: the tar archive (tar.js), padded with
// zeros to its Padmé length, piped through age encryption (typage's streaming
// API) to every recipient on the page. Nothing here holds a whole file in
// memory: the archive is pulled piece by piece as the upload asks for bytes.
//
// No WebAssembly anywhere. typage uses WebCrypto's X25519 when the browser has
// it and falls back to noble's pure-JS curve when it does not (older Tor
// Browser); outside a secure context crypto.subtle is missing altogether, which
// typage does not expect, so we switch the fallback on ourselves.

import { Encrypter } from "age-encryption";
// A deep import of typage's own module (the package does not export it): the
// same file its index imports, so the switch applies to the encryption below.
import { forceWebCryptoOff } from "../../../node_modules/age-encryption/dist/x25519.js";
import { planSubmission, submissionStream } from "./tar.js";

if (!globalThis.crypto || !globalThis.crypto.subtle) {
  forceWebCryptoOff(true);
}

/** Whether this browser has what sealing needs (else the form posts without JS). */
export function canSealInBrowser() {
  return (
    typeof ReadableStream === "function" &&
    typeof TransformStream === "function" &&
    typeof TextEncoder === "function" &&
    typeof XMLHttpRequest === "function" &&
    typeof BigInt === "function" &&
    !!(globalThis.crypto && globalThis.crypto.getRandomValues) &&
    typeof Blob === "function" &&
    typeof Blob.prototype.stream === "function"
  );
}

/**
 * Seal a submission: returns `{plan, stream, size}` where `stream` is the age
 * ciphertext (a ReadableStream) and `size` its exact length in bytes, known
 * before any data is read. `onPlaintext(n)` reports plaintext bytes consumed.
 * `conversation` (conversationFields) goes into submission.json when given.
 */
export async function sealSubmission({
  message,
  files,
  language,
  day,
  recipients,
  onPlaintext,
  conversation = null,
}) {
  if (!recipients || recipients.length === 0) {
    throw new Error("no recipients on the page");
  }
  const plan = planSubmission({ message, files, language, day, sealedBy: "browser", conversation });
  const encrypter = new Encrypter();
  for (const recipient of recipients) {
    encrypter.addRecipient(recipient);
  }
  const archive = submissionStream(plan, onPlaintext);
  const stream = await encrypter.encrypt(archive);
  return { plan, stream, size: stream.size(plan.paddedLength) };
}

/**
 * A reader over `stream` whose reads return exactly `chunkSize` bytes (the last
 * one fewer), so the upload client never concatenates many small pieces.
 */
export function chunkingReader(stream, chunkSize) {
  const reader = stream.getReader();
  let carry = null;
  let finished = false;
  return {
    async read() {
      if (finished) return { value: undefined, done: true };
      const chunk = new Uint8Array(chunkSize);
      let filled = 0;
      while (filled < chunkSize) {
        let piece = carry;
        carry = null;
        if (piece === null) {
          const { value, done } = await reader.read();
          if (done) {
            finished = true;
            break;
          }
          piece = value;
        }
        const take = Math.min(piece.length, chunkSize - filled);
        chunk.set(piece.subarray(0, take), filled);
        filled += take;
        if (take < piece.length) carry = piece.subarray(take);
      }
      if (filled === 0) return { value: undefined, done: true };
      return { value: filled === chunkSize ? chunk : chunk.slice(0, filled), done: false };
    },
    cancel(reason) {
      finished = true;
      return reader.cancel(reason);
    },
  };
}
