// PDF: the document information (/Author, /Creator, /Producer, dates) and the
// XMP packet, looked for as text in the first and last part of the file, where
// writers put them. A PDF that compresses them into object streams hides them
// from this reader: the page then says it found nothing it could read, not
// that the file is clean. Nothing is removed here: a PDF cannot be rewritten
// without risk in the browser; the reviewers remove it (mat2) before sharing.

import { latin1, readSlice, startsWith } from "./bytes.js";

export const PDF_MAGIC = [0x25, 0x50, 0x44, 0x46, 0x2d]; // "%PDF-"
const WINDOW = 512 * 1024;
const INFO_KEYS = ["Author", "Creator", "Producer", "CreationDate", "ModDate", "Title", "Subject", "Company"];
const XMP_KEYS = ["dc:creator", "xmp:CreatorTool", "pdf:Producer", "xmp:CreateDate", "xmp:ModifyDate"];

function pdfString(raw) {
  // (literal) with \ escapes, or <hex>; UTF-16BE when it starts with a BOM.
  let bytes;
  if (raw.startsWith("<")) {
    const hex = raw.slice(1, -1).replace(/[^0-9a-fA-F]/g, "");
    bytes = [];
    for (let i = 0; i + 1 < hex.length; i += 2) bytes.push(parseInt(hex.slice(i, i + 2), 16));
  } else {
    const body = raw.slice(1, -1).replace(/\\([nrtbf()\\]|[0-7]{1,3})/g, (_, escape) =>
      /[0-7]/.test(escape[0]) ? String.fromCharCode(parseInt(escape, 8) & 0xff) : { n: "\n", r: "\r", t: "\t", b: "\b", f: "\f" }[escape] || escape,
    );
    bytes = Array.from(body, (char) => char.charCodeAt(0) & 0xff);
  }
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    return new TextDecoder("utf-16be").decode(new Uint8Array(bytes.slice(2)));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function readable(key, value) {
  // D:YYYYMMDDHHmmSS -> YYYY-MM-DD HH:mm:SS
  const date = /^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?/.exec(value);
  if (!key.endsWith("Date") || !date) return value;
  const [, year, month = "01", day = "01", hour = "00", minute = "00", second = "00"] = date;
  return `${year}-${month}-${day} ${hour}:${minute}:${second}`;
}

export function isPdf(head) {
  return startsWith(head, PDF_MAGIC);
}

/** Field name -> value found in the PDF's first and last WINDOW bytes. */
export async function pdfFields(file) {
  const first = latin1(await readSlice(file, 0, WINDOW));
  const last = file.size > WINDOW ? latin1(await readSlice(file, file.size - WINDOW, file.size)) : "";
  const fields = {};
  for (const text of [first, last]) {
    for (const key of INFO_KEYS) {
      const match = text.match(new RegExp(`/${key}\\s*(\\((?:\\\\.|[^\\\\)]){0,2000}\\)|<[0-9a-fA-F\\s]{0,4000}>)`));
      // /Creator names the program that made the original, not a person.
      if (match) fields[key === "Creator" ? "CreatorTool" : key] = readable(key, pdfString(match[1]));
    }
    for (const key of XMP_KEYS) {
      const match = text.match(new RegExp(`<${key}[^>]{0,200}>([\\s\\S]{0,2000}?)</${key}>`));
      if (match) fields[key.split(":")[1]] = match[1].replace(/<[^>]{0,200}>/g, " ").trim();
    }
  }
  return fields;
}
