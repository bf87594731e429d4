// Reading a reply in the browser: the checks of relay/conversation/reply.py, in
// the same order and with the same error kinds (docs/conversations.md "The reply
// container"): size caps; the two fixed tar headers (reply.mac, reply.json: the
// only parsing before the MAC); reply.mac in constant time; reply.json; the
// conversation id; n against the slot; every entry against the tar's members;
// zeros after the end of the archive. A reply that fails is counted, never shown.

import { Decrypter } from "age-encryption";
import { sanitizeName } from "../names.js";
import { slotOfReply, hmacSha256, DEFAULT_RING_SIZE } from "./slots.js";
import { toHex } from "./derive.js";

const BLOCK = 512;
const MAC_LABEL = new TextEncoder().encode("tiprelay/reply/v1\0");
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const decoder = new TextDecoder("utf-8", { fatal: true });

export const DEFAULT_REPLY_LIMITS = Object.freeze({
  maxReplyBytes: 16 * 1024 * 1024,
  maxEntries: 64,
  maxMetaBytes: 64 * 1024,
  maxPaxHeaderBytes: 8 * 1024,
});

/** A reply that failed a check; `kind` names which (for counting, never showing). */
export class ReplyError extends Error {
  constructor(kind) {
    super(`reply: ${kind}`);
    this.name = "ReplyError";
    this.kind = kind;
  }
}

class TarError extends Error {}

function ascii(bytes) {
  let out = "";
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}

function cutAtNul(field) {
  const end = field.indexOf(0);
  return end < 0 ? field : field.subarray(0, end);
}

function parseNumber(field) {
  if (field[0] === 0x80) {
    let value = 0;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    if (!Number.isSafeInteger(value)) throw new TarError("size too large");
    return value;
  }
  if (field[0] & 0x80) throw new TarError("negative number");
  const digits = ascii(cutAtNul(field)).replace(/^ +| +$/g, "");
  if (!digits) return 0;
  if (!/^[0-7]+$/.test(digits)) throw new TarError("not a number");
  return parseInt(digits, 8);
}

function parseHeader(block) {
  let unsigned = 8 * 32;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) {
    if (i < 148 || i >= 156) unsigned += block[i];
    if (block[i] >= 128) high += 1;
  }
  const checksum = ascii(cutAtNul(block.subarray(148, 156))).replace(/^ +| +$/g, "");
  if (!checksum || !/^[0-7]+$/.test(checksum)) throw new TarError("bad checksum");
  const value = parseInt(checksum, 8);
  if (value !== unsigned && value !== unsigned - 256 * high) throw new TarError("bad checksum");
  const magic = ascii(block.subarray(257, 265));
  if (magic !== "ustar\u000000" && magic !== "ustar  \u0000") throw new TarError("not ustar");
  const name = cutAtNul(block.subarray(0, 100));
  const prefix = magic === "ustar\u000000" ? cutAtNul(block.subarray(345, 500)) : new Uint8Array();
  let fullName = name;
  if (prefix.length) {
    fullName = new Uint8Array(prefix.length + 1 + name.length);
    fullName.set(prefix);
    fullName[prefix.length] = 0x2f;
    fullName.set(name, prefix.length + 1);
  }
  return {
    typeflag: String.fromCharCode(block[156]),
    size: parseNumber(block.subarray(124, 136)),
    name: fullName,
  };
}

function parsePaxRecords(data) {
  const records = new Map();
  let position = 0;
  while (position < data.length) {
    if (data[position] === 0) {
      if (data.subarray(position).some((b) => b !== 0)) throw new TarError("bad pax record");
      break;
    }
    const space = data.subarray(position, position + 20).indexOf(0x20);
    const digits = space > 0 ? ascii(data.subarray(position, position + space)) : "";
    if (!/^[0-9]+$/.test(digits)) throw new TarError("bad pax record");
    const end = position + parseInt(digits, 10);
    const record = data.subarray(position + space + 1, end);
    if (end > data.length || record[record.length - 1] !== 0x0a || !record.includes(0x3d)) {
      throw new TarError("bad pax record");
    }
    const equals = record.indexOf(0x3d);
    records.set(decoder.decode(record.subarray(0, equals)), record.subarray(equals + 1, -1));
    position = end;
  }
  return records;
}

class Cursor {
  constructor(data, limits) {
    this.data = data;
    this.offset = 0;
    this.limits = limits;
  }

  block() {
    if (this.offset + BLOCK > this.data.length) throw new TarError("ends early");
    return this.data.subarray(this.offset, this.offset + BLOCK);
  }

  body(size) {
    const end = this.offset + BLOCK + size;
    if (end > this.data.length) throw new TarError("ends early");
    const body = this.data.subarray(this.offset + BLOCK, end);
    this.offset += BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    return body;
  }

  member(maxSize, allowPax = true) {
    let header = parseHeader(this.block());
    let path = null;
    let size = null;
    if (header.typeflag === "x" && allowPax) {
      if (header.size > this.limits.maxPaxHeaderBytes) throw new TarError("pax too large");
      const records = parsePaxRecords(this.body(header.size));
      for (const key of records.keys()) {
        if (key !== "path" && key !== "size") throw new TarError("unexpected pax record");
      }
      if (records.has("path")) path = decoder.decode(records.get("path"));
      if (records.has("size")) {
        const text = ascii(records.get("size"));
        if (!/^[0-9]{1,19}$/.test(text)) throw new TarError("bad pax size");
        size = Number(text);
      }
      header = parseHeader(this.block());
    }
    if (header.typeflag !== "0" && header.typeflag !== "\0") throw new TarError("not a file");
    size = size === null ? header.size : size;
    if (size > maxSize) throw new TarError("member too large");
    path = path === null ? decoder.decode(header.name) : path;
    return [path, this.body(size)];
  }

  atCleanEnd() {
    const rest = this.data.length - this.offset;
    return rest >= 2 * BLOCK && this.data.subarray(this.offset).every((b) => b === 0);
  }
}

function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

function validDay(text) {
  if (typeof text !== "string" || !DAY.test(text)) return false;
  const [year, month, day] = text.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    year >= 1 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day
  );
}

function isPlainObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sameKeys(object, keys) {
  const own = Object.keys(object);
  return own.length === keys.length && keys.every((key) => Object.hasOwn(object, key));
}

function validEntryName(name, position) {
  if (typeof name !== "string") return false;
  if (position === 0) return name === "message.txt";
  if (!name.startsWith("files/")) return false;
  const stored = name.slice("files/".length);
  return stored.length > 0 && sanitizeName(stored) === stored;
}

function parseMeta(metaBytes, limits) {
  let meta;
  try {
    meta = JSON.parse(decoder.decode(metaBytes));
  } catch {
    throw new ReplyError("malformed");
  }
  const bad = () => new ReplyError("malformed");
  if (!isPlainObject(meta) || !sameKeys(meta, ["v", "conversation_id", "n", "day", "entries"])) {
    throw bad();
  }
  const { n, entries } = meta;
  if (meta.v !== 1 || typeof meta.conversation_id !== "string" || !validDay(meta.day)) throw bad();
  if (!Number.isSafeInteger(n) || n < 1) throw bad();
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > limits.maxEntries) {
    throw bad();
  }
  const seen = new Set();
  entries.forEach((entry, position) => {
    if (!isPlainObject(entry) || !sameKeys(entry, ["name", "size", "sha256"])) throw bad();
    if (!Number.isSafeInteger(entry.size) || entry.size < 0 || entry.size > limits.maxReplyBytes) {
      throw bad();
    }
    if (typeof entry.sha256 !== "string" || !SHA256_HEX.test(entry.sha256)) throw bad();
    if (!validEntryName(entry.name, position)) throw bad();
    seen.add(entry.name.toLowerCase());
  });
  if (seen.size !== entries.length) throw bad();
  return meta;
}

/**
 * The reply in `plaintext` (a decrypted reply container from slot `slot`):
 * {n, day, message, attachments: [{name, data}]}; throws ReplyError otherwise.
 * `keys` needs authKey and conversationId (Uint8Arrays, as deriveConversationKeys gives).
 */
export async function readReply(plaintext, keys, slot, ringSize = DEFAULT_RING_SIZE, limits = DEFAULT_REPLY_LIMITS) {
  if (plaintext.length > limits.maxReplyBytes) throw new ReplyError("too_large");
  const cursor = new Cursor(plaintext, limits);
  let macPath, mac, metaPath, metaBytes;
  try {
    // Two plain ustar headers (no pax) are all that is parsed before the MAC.
    [macPath, mac] = cursor.member(32, false);
    [metaPath, metaBytes] = cursor.member(limits.maxMetaBytes, false);
  } catch (error) {
    if (error instanceof TarError || error instanceof TypeError) throw new ReplyError("malformed");
    throw error;
  }
  if (macPath !== "reply.mac" || metaPath !== "reply.json" || mac.length !== 32) {
    throw new ReplyError("malformed");
  }
  const signed = new Uint8Array(MAC_LABEL.length + metaBytes.length);
  signed.set(MAC_LABEL);
  signed.set(metaBytes, MAC_LABEL.length);
  if (!constantTimeEqual(await hmacSha256(keys.authKey, signed), mac)) {
    throw new ReplyError("not_authentic");
  }
  const meta = parseMeta(metaBytes, limits);
  const expectedId = new TextEncoder().encode(toHex(keys.conversationId));
  if (!constantTimeEqual(new TextEncoder().encode(meta.conversation_id), expectedId)) {
    throw new ReplyError("wrong_conversation");
  }
  if (slotOfReply(meta.n, ringSize) !== slot) throw new ReplyError("wrong_slot");
  const contents = [];
  try {
    for (const entry of meta.entries) {
      const [path, data] = cursor.member(limits.maxReplyBytes);
      if (path !== entry.name || data.length !== entry.size) throw new ReplyError("entries_mismatch");
      const digest = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
      if (!constantTimeEqual(new TextEncoder().encode(digest), new TextEncoder().encode(entry.sha256))) {
        throw new ReplyError("entries_mismatch");
      }
      contents.push(data);
    }
  } catch (error) {
    if (error instanceof TarError || error instanceof TypeError) {
      throw new ReplyError("entries_mismatch");
    }
    throw error;
  }
  if (!cursor.atCleanEnd()) throw new ReplyError("entries_mismatch");
  let message;
  try {
    message = decoder.decode(contents[0]);
  } catch {
    throw new ReplyError("malformed");
  }
  const attachments = meta.entries.slice(1).map((entry, i) => ({
    name: entry.name.slice("files/".length),
    data: contents[i + 1],
  }));
  return { n: meta.n, day: meta.day, message, attachments };
}

/**
 * Decrypt a reply's age ciphertext with the conversation's reply identity and
 * read it: what the "read replies" page does for each slot. A ciphertext that
 * does not open is ReplyError("not_authentic") too: only its count is shown.
 */
export async function openReply(ciphertext, keys, slot, ringSize = DEFAULT_RING_SIZE, limits = DEFAULT_REPLY_LIMITS) {
  // age adds a header (a few hundred bytes per recipient) and 16 bytes per 64 KiB.
  const overhead = 64 * 1024 + 16 * Math.ceil(limits.maxReplyBytes / 65536 + 1);
  if (ciphertext.length > limits.maxReplyBytes + overhead) throw new ReplyError("too_large");
  const decrypter = new Decrypter();
  decrypter.addIdentity(keys.replyIdentity);
  let plaintext;
  try {
    plaintext = await decrypter.decrypt(ciphertext, "uint8array");
  } catch {
    throw new ReplyError("not_authentic");
  }
  return readReply(plaintext, keys, slot, ringSize, limits);
}
