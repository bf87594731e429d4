// Office files (DOCX, XLSX, PPTX; ODT and other OpenDocument files) are zip
// archives; their document properties (author, last editor, company, dates,
// program) live in docProps/core.xml and docProps/app.xml, or meta.xml. This
// is a small bounded zip reader: it reads the central directory from the end
// of the file, then only those entries, each at most MAX_ENTRY_BYTES packed
// and unpacked (a zip bomb stops at the cap), unpacked by the browser's own
// DecompressionStream. Nothing is removed here: rewriting the zip would risk
// the document; the reviewers remove it (mat2) before sharing.

import { UnreadableFile, readSlice, startsWith } from "./bytes.js";

export const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const PROPERTY_ENTRIES = ["docProps/core.xml", "docProps/app.xml", "meta.xml"];
const MAX_CENTRAL_DIRECTORY = 4 * 1024 * 1024;
const MAX_ENTRIES = 20000;
const MAX_ENTRY_BYTES = 1024 * 1024;
const END_SEARCH = 65536 + 22;

function u16(bytes, at) {
  return bytes[at] | (bytes[at + 1] << 8);
}
function u32(bytes, at) {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

async function centralDirectory(file) {
  const tail = await readSlice(file, file.size - END_SEARCH, file.size);
  for (let at = tail.length - 22; at >= 0; at--) {
    if (u32(tail, at) !== 0x06054b50) continue;
    const count = u16(tail, at + 10);
    const size = u32(tail, at + 12);
    const offset = u32(tail, at + 16);
    if (count > MAX_ENTRIES || size > MAX_CENTRAL_DIRECTORY || offset + size > file.size) {
      throw new UnreadableFile("a zip directory over the limits");
    }
    return { bytes: await readSlice(file, offset, offset + size), count };
  }
  throw new UnreadableFile("no zip directory");
}

async function inflateCapped(packed, method) {
  if (method === 0) return packed;
  if (method !== 8 || typeof DecompressionStream !== "function") {
    throw new UnreadableFile("a zip entry this browser cannot unpack");
  }
  const reader = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch {
      throw new UnreadableFile("a damaged zip entry (its compressed data is corrupt)");
    }
    const { value, done } = step;
    if (done) break;
    total += value.length;
    if (total > MAX_ENTRY_BYTES) {
      await reader.cancel();
      throw new UnreadableFile("a document property part unpacks to too much (a zip bomb?)");
    }
    parts.push(value);
  }
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

async function readEntry(file, entry) {
  const local = await readSlice(file, entry.offset, entry.offset + 30);
  if (u32(local, 0) !== 0x04034b50) throw new UnreadableFile("a damaged zip entry");
  const start = entry.offset + 30 + u16(local, 26) + u16(local, 28);
  const packed = await readSlice(file, start, start + entry.packedSize);
  return new TextDecoder().decode(await inflateCapped(packed, entry.method));
}

function propertyFields(xml) {
  const fields = {};
  // Leaf elements only: <prefix:Name ...>value</prefix:Name>.
  const pattern = /<(?:[\w.-]+:)?([\w.-]{1,64})(?:\s[^>]{0,500})?>([^<]{1,2000})<\/(?:[\w.-]+:)?\1>/g;
  let match;
  let count = 0;
  while ((match = pattern.exec(xml)) !== null && count++ < 500) {
    fields[match[1]] = match[2].trim();
  }
  return fields;
}

export function isZip(head) {
  return startsWith(head, ZIP_MAGIC);
}

/** Field name -> value from the document's property parts. */
export async function officeFields(file) {
  const { bytes, count } = await centralDirectory(file);
  const entries = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || u32(bytes, at) !== 0x02014b50) throw new UnreadableFile("a damaged zip directory");
    const nameLength = u16(bytes, at + 28);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    if (PROPERTY_ENTRIES.includes(name)) {
      const entry = { name, method: u16(bytes, at + 10), packedSize: u32(bytes, at + 20), size: u32(bytes, at + 24), offset: u32(bytes, at + 42) };
      if (entry.packedSize > MAX_ENTRY_BYTES || entry.size > MAX_ENTRY_BYTES) {
        throw new UnreadableFile("a document property part over the limit (a zip bomb?)");
      }
      entries.push(entry);
    }
    at += 46 + nameLength + u16(bytes, at + 30) + u16(bytes, at + 32);
  }
  const fields = {};
  for (const entry of entries) Object.assign(fields, propertyFields(await readEntry(file, entry)));
  // Counts and template names say little; "Application" is the program.
  for (const name of ["Pages", "Words", "Characters", "Lines", "Paragraphs", "TotalTime", "DocSecurity", "ScaleCrop", "LinksUpToDate", "SharedDoc", "HyperlinksChanged", "AppVersion", "revision"]) {
    delete fields[name];
  }
  return fields;
}
