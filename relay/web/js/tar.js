// The plaintext of a submission, built in the browser as a stream: the same
// archive, byte for byte, as relay/container/writer.py builds on the server
// (tests/test_browser_container.py runs both on the same input and compares):
//
//   message.txt       header, UTF-8 text, zeros to the next 512-byte block
//   files/<name>      per attachment: [pax header,] header, data, zeros to the block
//   submission.json   header, JSON (keys sorted, 2-space indent), spaces and a newline
//                     to META_PADDED_BYTES (so one-off and conversation tips match)
//   end of archive    two zero blocks
//   Padmé padding     zeros up to padmeLength(length so far)
//
// Headers are ustar (mode 0644, uid/gid 0, mtime 0, no owner names), with a pax
// "x" header before an entry whose path is not ASCII or is over 100 bytes.
// Only one piece of one file is in memory at a time; the length of the whole
// archive is known before the first byte, which the upload needs.

import { NameAllocator } from "./names.js";
import { padmeLength } from "./padme.js";

export const BLOCK_SIZE = 512;
export const FORMAT_VERSION = 1;
/** Every submission.json is this long (relay/container/writer.py META_PADDED_BYTES). */
export const META_PADDED_BYTES = 1024;
const NAME_FIELD_BYTES = 100;
const MAX_OCTAL_SIZE = 8 ** 11 - 1;
const PAX_HEADER_NAME = "././@PaxHeader";
const PADDING_PIECE = 64 * 1024;
const encoder = new TextEncoder();

function paddingLength(length) {
  return (BLOCK_SIZE - (length % BLOCK_SIZE)) % BLOCK_SIZE;
}

function writeAscii(block, offset, text) {
  for (let i = 0; i < text.length; i++) block[offset + i] = text.charCodeAt(i);
}

function octal(value, width) {
  // width - 1 octal digits, then NUL (Python: b"%0*o\0" % (width - 1, value)).
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function headerBlock(nameBytes, size, typeflag) {
  const block = new Uint8Array(BLOCK_SIZE);
  block.set(nameBytes, 0);
  writeAscii(block, 100, octal(0o644, 8));
  writeAscii(block, 108, octal(0, 8));
  writeAscii(block, 116, octal(0, 8));
  writeAscii(block, 124, octal(size, 12));
  writeAscii(block, 136, octal(0, 12));
  writeAscii(block, 148, "        ");
  writeAscii(block, 156, typeflag);
  writeAscii(block, 257, "ustar\u000000");
  // devmajor/devminor stay NUL, as Python's tarfile writes them for files.
  let checksum = 0;
  for (const byte of block) checksum += byte;
  writeAscii(block, 148, checksum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

function asciiStandIn(path) {
  // What pax-unaware readers see: non-ASCII as "_", cut to the name field.
  let out = "";
  for (const char of path) out += char >= " " && char <= "~" ? char : "_";
  return encoder.encode(out).subarray(0, NAME_FIELD_BYTES);
}

function paxRecord(key, value) {
  // "<len> key=value\n", where <len> counts the whole record, its own digits too.
  const body = encoder.encode(` ${key}=${value}\n`);
  let length = body.length + String(body.length).length;
  length = body.length + String(length).length;
  return concatBytes([encoder.encode(String(length)), body]);
}

function concatBytes(parts) {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function isAscii(text) {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Header block(s) for a regular file: a pax header first when ustar cannot hold it. */
export function fileHeader(path, size) {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError("bad entry size");
  const records = [];
  if (!isAscii(path) || encoder.encode(path).length > NAME_FIELD_BYTES) {
    records.push(paxRecord("path", path));
  }
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord("size", String(size)));
  const header = headerBlock(asciiStandIn(path), Math.min(size, MAX_OCTAL_SIZE), "0");
  if (records.length === 0) return header;
  const paxData = concatBytes(records);
  const pax = headerBlock(encoder.encode(PAX_HEADER_NAME), paxData.length, "x");
  return concatBytes([pax, paxData, new Uint8Array(paddingLength(paxData.length)), header]);
}

/**
 * The text of submission.json: Python's json.dumps(..., indent=2, sort_keys=True),
 * then spaces and "\n" up to META_PADDED_BYTES (relay/container/writer.py meta_json).
 * `conversation` (conversation/derive.js conversationFields) is added when given.
 */
export function submissionJson({ language, sealedBy, day, conversation = null }) {
  if (!/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$/.test(language)) {
    throw new Error(`the form language ${language} is not a language tag`);
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`the day ${day} is not YYYY-MM-DD`);
  const meta = { day, format_version: FORMAT_VERSION, language, sealed_by: sealedBy };
  if (conversation) meta.conversation = conversation;
  const text = JSON.stringify(sortedKeys(meta), null, 2);
  const length = encoder.encode(text).length;
  if (length + 1 > META_PADDED_BYTES) {
    throw new Error(`submission.json would exceed ${META_PADDED_BYTES} bytes`);
  }
  return text + " ".repeat(META_PADDED_BYTES - 1 - length) + "\n";
}

/** A copy of a JSON object with its keys (and its objects' keys) in sorted order. */
function sortedKeys(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys(value[key])]),
  );
}

/** Today's date in UTC as YYYY-MM-DD (no finer time ever goes into a submission). */
export function utcDay(now = new Date()) {
  return now.toISOString().slice(0, 10);
}

/**
 * Lays out a submission before any data is read: names, headers, sizes and the
 * padded length. `files` are File/Blob-like objects with `name`, `size` and
 * `stream()`.
 */
export function planSubmission({
  message,
  files,
  language,
  day,
  sealedBy = "browser",
  conversation = null,
}) {
  const names = new NameAllocator();
  const messageBytes = encoder.encode(message);
  const entries = [];
  let length = 0;
  const addBytes = (path, bytes) => {
    const header = fileHeader(path, bytes.length);
    entries.push({ header, bytes, padding: paddingLength(bytes.length) });
    length += header.length + bytes.length + paddingLength(bytes.length);
  };
  addBytes("message.txt", messageBytes);
  const stored = [];
  for (const file of files) {
    const name = names.allocate(file.name);
    const header = fileHeader("files/" + name, file.size);
    entries.push({ header, file, padding: paddingLength(file.size) });
    stored.push({ name, size: file.size });
    length += header.length + file.size + paddingLength(file.size);
  }
  addBytes("submission.json", encoder.encode(submissionJson({ language, sealedBy, day, conversation })));
  length += 2 * BLOCK_SIZE;
  const plaintextBytes = messageBytes.length + files.reduce((sum, file) => sum + file.size, 0);
  return {
    entries,
    files: stored,
    archiveLength: length,
    paddedLength: padmeLength(length),
    plaintextBytes,
  };
}

/**
 * The archive of `plan` as a ReadableStream of Uint8Array pieces, pulled on
 * demand. `onPlaintext(n)` is called as attachment and message bytes go out
 * (for the encryption progress bar).
 */
export function submissionStream(plan, onPlaintext = () => {}) {
  const pieces = archivePieces(plan, onPlaintext);
  return new ReadableStream(
    {
      async pull(controller) {
        const { value, done } = await pieces.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel(reason) {
        await pieces.return(reason);
      },
    },
    { highWaterMark: 1 },
  );
}

async function* archivePieces(plan, onPlaintext) {
  let written = 0;
  for (const entry of plan.entries) {
    yield entry.header;
    written += entry.header.length;
    if (entry.bytes) {
      if (entry.bytes.length > 0) yield entry.bytes;
      onPlaintext(entry.bytes.length);
      written += entry.bytes.length;
    } else {
      written += yield* fileData(entry.file, onPlaintext);
    }
    if (entry.padding > 0) yield new Uint8Array(entry.padding);
    written += entry.padding;
  }
  yield new Uint8Array(2 * BLOCK_SIZE);
  written += 2 * BLOCK_SIZE;
  if (written !== plan.archiveLength) throw new Error("archive length changed while reading");
  let padding = plan.paddedLength - written;
  while (padding > 0) {
    const step = Math.min(padding, PADDING_PIECE);
    yield new Uint8Array(step);
    padding -= step;
  }
}

async function* fileData(file, onPlaintext) {
  // A file that changes size while it is read would break the declared header
  // (and the declared upload length): refuse it rather than send a bad archive.
  const reader = file.stream().getReader();
  let seen = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value.length;
      if (seen > file.size) throw new FileChangedError(file.name);
      yield value;
      onPlaintext(value.length);
    }
  } finally {
    reader.releaseLock();
  }
  if (seen !== file.size) throw new FileChangedError(file.name);
  return seen;
}

/** An attachment changed (or could not be read fully) while it was being sealed. */
export class FileChangedError extends Error {
  constructor(name) {
    super(`the file ${name} changed while it was being read`);
    this.name = "FileChangedError";
  }
}
