// Seals the age payload in parallel: plaintext is read in jobs of whole 64 KiB
// chunks, each job goes to one of a few Web Workers (seal_worker.js), and the
// sealed jobs come out in order as one ReadableStream. At most `maxInFlight`
// jobs are read ahead, so memory stays bounded whatever the file's size; the
// stream is pulled by the upload, which can start while sealing goes on.
//
// Where Workers cannot start (no Worker, a refused script), each job is
// sealed on the page's thread instead, one 64 KiB chunk per task so that the
// page still answers between chunks: slower, but the bytes are the same.

import { chunkingReader } from "./chunking.js";
import { chunkCount, PLAINTEXT_CHUNK_BYTES, sealChunks, TAG_BYTES } from "./stream_payload.js";

export const JOB_CHUNKS = 16; // 1 MiB of plaintext per job

/** How many workers to use: the browser's cores, at most `limit`, at least one. */
export function workerCount(limit) {
  const cores = Number(globalThis.navigator && navigator.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(cores, limit));
}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Seals on the page's thread one 64 KiB chunk at a time, letting the page run between. */
class InlineSealer {
  async seal(key, plaintext, firstIndex, lastIndex) {
    const count = chunkCount(plaintext.length);
    const out = new Uint8Array(plaintext.length + TAG_BYTES * count);
    for (let i = 0; i < count; i++) {
      const start = i * PLAINTEXT_CHUNK_BYTES;
      const piece = plaintext.subarray(start, start + PLAINTEXT_CHUNK_BYTES);
      out.set(sealChunks(key, piece, firstIndex + i, lastIndex), start + TAG_BYTES * i);
      await nextTask();
    }
    return out;
  }
  close() {}
}

class WorkerSealer {
  constructor(url, fallback) {
    this.worker = new Worker(url);
    this.fallback = fallback;
    this.waiting = new Map();
    this.nextJob = 0;
    this.broken = false;
    this.sealedInWorker = 0; // jobs this worker answered
    this.worker.onmessage = (event) => {
      const { job, sealed, error } = event.data;
      const entry = this.waiting.get(job);
      if (!entry) return;
      this.waiting.delete(job);
      if (error) {
        entry.reject(new Error(error));
      } else {
        this.sealedInWorker += 1;
        entry.resolve(new Uint8Array(sealed));
      }
    };
    this.worker.onerror = (event) => {
      // The script did not load or crashed: redo its jobs here, from copies.
      event.preventDefault();
      this.broken = true;
      for (const entry of this.waiting.values()) {
        entry.resolve(this.fallback.seal(entry.key, entry.copy, entry.firstIndex, entry.lastIndex));
      }
      this.waiting.clear();
    };
  }

  seal(key, plaintext, firstIndex, lastIndex) {
    if (this.broken) return this.fallback.seal(key, plaintext, firstIndex, lastIndex);
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      // The worker gets a copy; ours is kept until the answer comes, so a worker
      // that dies loses nothing.
      this.waiting.set(job, { resolve, reject, key, copy: plaintext, firstIndex, lastIndex });
      const sent = plaintext.slice().buffer;
      this.worker.postMessage({ job, key, plaintext: sent, firstIndex, lastIndex }, [sent]);
    });
  }

  close() {
    this.worker.terminate();
  }
}

/** `count` sealers: Web Workers when the browser lets us start them, else the page's thread. */
export function startSealers(count, workerUrl) {
  const inline = new InlineSealer();
  if (typeof Worker !== "function" || !workerUrl) return [inline];
  try {
    return Array.from({ length: count }, () => new WorkerSealer(workerUrl, inline));
  } catch {
    return [inline];
  }
}

/**
 * The sealed payload of `plaintext` (exactly `plaintextLength` bytes) under
 * `key`, as a ReadableStream of sealed jobs in order.
 */
export function sealedPayloadStream(plaintext, plaintextLength, key, sealers) {
  const lastIndex = chunkCount(plaintextLength) - 1;
  const reader = chunkingReader(plaintext, JOB_CHUNKS * PLAINTEXT_CHUNK_BYTES);
  const maxInFlight = 2 * sealers.length;
  const inFlight = [];
  let nextIndex = 0;
  let jobs = 0;
  let readAll = false;

  async function readAhead() {
    while (!readAll && inFlight.length < maxInFlight) {
      const { value, done } = await reader.read();
      if (done) {
        readAll = true;
        break;
      }
      const sealer = sealers[jobs % sealers.length];
      jobs += 1;
      inFlight.push(sealer.seal(key, value, nextIndex, lastIndex));
      nextIndex += chunkCount(value.length);
    }
  }

  function stop() {
    for (const sealer of sealers) sealer.close();
  }

  return new ReadableStream(
    {
      async pull(controller) {
        try {
          await readAhead();
          if (inFlight.length === 0) {
            if (jobs === 0) {
              controller.enqueue(sealChunks(key, new Uint8Array(0), 0, 0)); // empty payload
            } else if (nextIndex - 1 !== lastIndex) {
              throw new Error("the plaintext was not as long as announced");
            }
            stop();
            controller.close();
            return;
          }
          controller.enqueue(await inFlight.shift());
        } catch (error) {
          stop();
          controller.error(error);
        }
      },
      cancel(reason) {
        stop();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
