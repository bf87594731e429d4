// The Web Worker that seals runs of age payload chunks off the page's thread
// (bundled apart, as relay/web/static/dist/seal-worker.js). Stateless: each
// job carries the payload key, its plaintext (transferred, not copied) and its
// place in the payload; the answer carries the sealed bytes (transferred back).

import { sealChunks } from "./stream_payload.js";

self.onmessage = (event) => {
  const { job, key, plaintext, firstIndex, lastIndex } = event.data;
  try {
    const sealed = sealChunks(key, new Uint8Array(plaintext), firstIndex, lastIndex);
    self.postMessage({ job, sealed: sealed.buffer }, [sealed.buffer]);
  } catch (error) {
    self.postMessage({ job, error: String(error && error.message ? error.message : error) });
  }
};
