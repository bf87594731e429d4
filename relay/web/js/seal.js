// Sealing a submission in the browser: the tar archive (tar.js), padded with
// zeros to its Padmé length, encrypted with age to every recipient on the page:
// the header here (age_header.js), the payload's 64 KiB chunks in Web Workers
// in parallel (seal_pool.js), joined in order into one ReadableStream. Nothing
// here holds a whole file in memory: the archive is pulled piece by piece as
// the upload asks for bytes, a few jobs ahead.
//
// No WebAssembly anywhere. typage uses WebCrypto's X25519 when the browser has
// it and falls back to noble's pure-JS curve when it does not (older Tor
// Browser); outside a secure context crypto.subtle is missing altogether, which
// typage does not expect, so we switch the fallback on ourselves.

// A deep import of typage's own module (the package does not export it): the
// same file its recipients import, so the switch applies to the header below.
import { forceWebCryptoOff } from "../../../node_modules/age-encryption/dist/x25519.js";
import { newAgeHeader } from "./age_header.js";
import { sealedPayloadStream, startSealers, workerCount } from "./seal_pool.js";
import { payloadKey, payloadLength } from "./stream_payload.js";
import { planSubmission, submissionStream } from "./tar.js";

if (!globalThis.crypto || !globalThis.crypto.subtle) {
  forceWebCryptoOff(true);
}

// The worker script sits next to the bundle (relay/web/static/dist/); the
// bundle's own URL is only known while it first runs.
const WORKER_URL =
  globalThis.document && document.currentScript && document.currentScript.src
    ? new URL("seal-worker.js", document.currentScript.src).href
    : null;

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
 * Seal a submission: returns `{plan, stream, size, workersUsed}` where `stream`
 * is the age ciphertext (a ReadableStream), `size` its exact length in bytes,
 * known before any data is read, and `workersUsed()` how many Web Workers have
 * sealed part of it (0: the page's own thread did, where Workers cannot start).
 * `onPlaintext(n)` reports plaintext bytes consumed; `maxWorkers` bounds the
 * workers (the page's sealWorkersMax setting).
 * `conversation` (conversationFields) goes into submission.json when given.
 * `openpgpKeys` maps each `openpgp:<FINGERPRINT>` recipient's fingerprint to
 * its armored public key (the page's #recipients block).
 */
export async function sealSubmission({
  message,
  files,
  language,
  day,
  recipients,
  openpgpKeys = {},
  onPlaintext,
  conversation = null,
  maxWorkers = 1,
}) {
  if (!recipients || recipients.length === 0) {
    throw new Error("no recipients on the page");
  }
  const plan = planSubmission({ message, files, language, day, sealedBy: "browser", conversation });
  const { header, fileKey, nonce } = await newAgeHeader(recipients, { openpgpKeys });
  const key = payloadKey(fileKey, nonce);
  fileKey.fill(0);
  const sealers = startSealers(workerCount(maxWorkers), WORKER_URL);
  const payload = sealedPayloadStream(
    submissionStream(plan, onPlaintext),
    plan.paddedLength,
    key,
    sealers,
  );
  const prefix = new Uint8Array(header.length + nonce.length);
  prefix.set(header);
  prefix.set(nonce, header.length);
  const stream = withPrefix(prefix, payload);
  const size = prefix.length + payloadLength(plan.paddedLength);
  const workersUsed = () => sealers.filter((sealer) => sealer.sealedInWorker > 0).length;
  return { plan, stream, size, workersUsed };
}

function withPrefix(prefix, stream) {
  const reader = stream.getReader();
  let sentPrefix = false;
  return new ReadableStream(
    {
      async pull(controller) {
        if (!sentPrefix) {
          sentPrefix = true;
          controller.enqueue(prefix);
          return;
        }
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
