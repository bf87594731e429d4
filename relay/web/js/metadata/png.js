// PNG: the chunk list, read 8 bytes at a time, and a copy without the chunks
// that describe the file rather than draw it: tEXt, iTXt, zTXt (author,
// comments, XMP), eXIf (EXIF: GPS, camera) and tIME (last change). Every other
// chunk (IHDR, PLTE, IDAT, IEND, colour and density chunks) is copied byte for
// byte: the pixels are never decoded.

import { UnreadableFile, latin1, readSlice, startsWith } from "./bytes.js";

export const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const DROPPED = new Set(["tEXt", "iTXt", "zTXt", "eXIf", "tIME"]);
const MAX_CHUNKS = 20000;
const MAX_TEXT_READ = 64 * 1024; // of one text chunk, to show the source what it says

/** Every chunk: [{type, start, end}], each `end` past its CRC. */
export async function pngChunks(file) {
  if (!startsWith(await readSlice(file, 0, 8), PNG_MAGIC)) throw new UnreadableFile("not a PNG");
  const chunks = [];
  let offset = 8;
  while (chunks.length < MAX_CHUNKS) {
    const head = await readSlice(file, offset, offset + 8);
    if (head.length < 8) throw new UnreadableFile("the PNG ends before its IEND chunk");
    const length = ((head[0] << 24) >>> 0) + (head[1] << 16) + (head[2] << 8) + head[3];
    const type = latin1(head.subarray(4, 8));
    const end = offset + 12 + length;
    if (!/^[A-Za-z]{4}$/.test(type) || end > file.size) {
      throw new UnreadableFile("a damaged PNG chunk");
    }
    chunks.push({ type, start: offset, end });
    offset = end;
    if (type === "IEND") return chunks;
  }
  throw new UnreadableFile("too many PNG chunks");
}

/** The text chunks' keyword -> text (tEXt only in clear; others are named). */
export async function pngTextFields(file, chunks) {
  const fields = {};
  for (const chunk of chunks) {
    if (chunk.type === "tEXt" || chunk.type === "iTXt") {
      const body = await readSlice(file, chunk.start + 8, Math.min(chunk.end - 4, chunk.start + 8 + MAX_TEXT_READ));
      const nul = body.indexOf(0);
      const keyword = latin1(body.subarray(0, nul < 0 ? Math.min(79, body.length) : nul));
      let text = nul < 0 ? "" : new TextDecoder().decode(body.subarray(nul + 1));
      if (chunk.type === "iTXt") text = text.replace(/^[\s\S]{2}[^\0]*\0[^\0]*\0/, "");
      fields[keyword] = text;
    } else if (chunk.type === "tIME") {
      fields.ModifyDate = "(PNG tIME)";
    } else if (chunk.type === "zTXt") {
      fields[`${chunk.type} (compressed text)`] = "…";
    }
  }
  return fields;
}

export function pngHasDroppable(chunks) {
  return chunks.some((chunk) => DROPPED.has(chunk.type));
}

/** A copy without the descriptive chunks (see above). */
export async function pngWithoutMetadata(file) {
  const chunks = await pngChunks(file);
  const parts = [file.slice(0, 8)];
  for (const chunk of chunks) {
    if (!DROPPED.has(chunk.type)) parts.push(file.slice(chunk.start, chunk.end));
  }
  return new Blob(parts, { type: "image/png" });
}
