// Test helper: re-seals the payload of every C2SP CCTV age vector that
// succeeds and names its file key, with relay/web/js/stream_payload.js, and
// compares byte for byte with the vector's own payload: once whole, and once
// in runs of 3 chunks joined (as the Web Workers seal it). The plaintext comes
// from decrypting the vector with typage's STREAM, checked against the hash the
// vector names. stdout: {"checked": [names], "skipped": {name: why}, "mismatched": [names]}.
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";
import * as vectors from "cctv-age";
import { decryptSTREAM } from "../../node_modules/age-encryption/dist/stream.js";
import {
  chunkCount,
  PLAINTEXT_CHUNK_BYTES,
  payloadKey,
  sealChunks,
} from "../../relay/web/js/stream_payload.js";

function parseVector(bytes) {
  const text = Buffer.from(bytes).toString("latin1");
  const end = text.indexOf("\n\n");
  const fields = {};
  for (const line of text.slice(0, end).split("\n")) {
    const colon = line.indexOf(": ");
    fields[line.slice(0, colon)] = line.slice(colon + 2);
  }
  let body = Buffer.from(bytes).subarray(end + 2);
  if (fields.compressed === "zlib") body = inflateSync(body);
  return { fields, body };
}

async function decrypt(key, payload) {
  const plaintext = [];
  const source = new Blob([payload]).stream().pipeThrough(decryptSTREAM(key));
  for await (const piece of source) plaintext.push(piece);
  return Buffer.concat(plaintext);
}

function sealInRuns(key, plaintext, run) {
  const last = chunkCount(plaintext.length) - 1;
  const pieces = [];
  const step = run * PLAINTEXT_CHUNK_BYTES;
  for (let start = 0, index = 0; start < plaintext.length || index === 0; start += step, index += run) {
    pieces.push(sealChunks(key, plaintext.subarray(start, start + step), index, last));
    if (start + step >= plaintext.length) break;
  }
  return Buffer.concat(pieces);
}

const checked = [];
const skipped = {};
const mismatched = [];
for (const [name, bytes] of Object.entries(vectors)) {
  const { fields, body } = parseVector(bytes);
  if (fields.expect !== "success") continue;
  if (!fields["file key"]) {
    skipped[name] = "no file key";
    continue;
  }
  if (fields.armored === "yes") {
    skipped[name] = "armored";
    continue;
  }
  const headerEnd = body.indexOf("\n---");
  const macEnd = body.indexOf("\n", headerEnd + 1) + 1;
  const nonce = body.subarray(macEnd, macEnd + 16);
  const payload = body.subarray(macEnd + 16);
  const key = payloadKey(Buffer.from(fields["file key"], "hex"), nonce);
  const plaintext = await decrypt(key, payload);
  if (createHash("sha256").update(plaintext).digest("hex") !== fields.payload) {
    skipped[name] = "plaintext hash differs (not a STREAM vector)";
    continue;
  }
  const whole = Buffer.from(sealChunks(key, plaintext, 0, chunkCount(plaintext.length) - 1));
  const inRuns = sealInRuns(key, plaintext, 3);
  if (!whole.equals(payload) || !inRuns.equals(payload)) mismatched.push(name);
  else checked.push(name);
}
process.stdout.write(JSON.stringify({ checked, skipped, mismatched }));
