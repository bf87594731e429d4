// Resumable upload of the sealed submission with tus-js-client (tus 1.0.0).
// Tor circuits drop: every failed request is retried after the page's delays,
// resuming from the offset the server reports (HEAD), and the page can call
// `resume()` after the retries ran out. The upload URL lives only in this page's
// memory: nothing goes to localStorage, so the source's browser keeps no trace
// once the tab is closed.

import { Upload } from "tus-js-client";
import { chunkingReader } from "./chunking.js";

export const RECEIPT_HEADER = "Tiprelay-Receipt";

const memoryOnlyUrlStorage = {
  findAllUploads: async () => [],
  findUploadsByFingerprint: async () => [],
  removeUpload: async () => {},
  addUpload: async () => "",
};

/** Why an upload stopped, for the page to pick the message in the source's language. */
export class UploadFailure extends Error {
  constructor(kind, status, cause) {
    super(`upload failed: ${kind}${status ? ` (HTTP ${status})` : ""}`);
    this.name = "UploadFailure";
    this.kind = kind; // "refused" | "too_large" | "storage_full" | "network" | "local"
    this.status = status;
    this.cause = cause;
  }
}

function classify(error) {
  const response = error && error.originalResponse;
  const status = response ? response.getStatus() : 0;
  if (status === 413) return new UploadFailure("too_large", status, error);
  if (status === 507) return new UploadFailure("storage_full", status, error);
  if (status >= 400 && status < 500) return new UploadFailure("refused", status, error);
  if (error && error.originalRequest) return new UploadFailure("network", status, error);
  return new UploadFailure("local", status, error);
}

/**
 * Start uploading `stream` (exactly `size` bytes). Callbacks: onProgress(sent,
 * total), onRetry(), onSuccess(receipt), onFailure(UploadFailure). Returns
 * `{resume, cancel}`.
 */
export function startUpload({ stream, size, settings, onProgress, onRetry, onSuccess, onFailure }) {
  const reader = chunkingReader(stream, settings.chunkSize);
  const upload = new Upload(reader, {
    endpoint: settings.endpoint,
    chunkSize: settings.chunkSize,
    uploadSize: size,
    retryDelays: settings.retryDelays,
    // No fingerprint, no URL storage: resuming works within this page only.
    fingerprint: async () => null,
    urlStorage: memoryOnlyUrlStorage,
    storeFingerprintForResuming: false,
    removeFingerprintOnSuccess: true,
    metadata: {},
    onProgress,
    onShouldRetry(error, attempt) {
      const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
      const retry = status === 0 || status === 409 || status === 423 || status >= 500;
      if (retry && onRetry) onRetry(attempt);
      return retry && status !== 507;
    },
    onSuccess({ lastResponse }) {
      onSuccess(lastResponse ? lastResponse.getHeader(RECEIPT_HEADER) : null);
    },
    onError(error) {
      onFailure(classify(error));
    },
  });
  upload.start();
  return {
    resume() {
      // Start over the automatic retries too (tus-js-client keeps no public
      // counter); start() reuses the upload URL and the stream, so it resumes.
      upload._retryAttempt = 0;
      upload.start();
    },
    cancel() {
      return upload.abort(true);
    },
  };
}
