// What each attachment gives away, read in the browser before sealing, and
// lossless copies of JPEG and PNG pictures without it. Nothing found here
// leaves the browser except inside the sealed archive.
//
//   inspectAttachment(file) -> {kinds: Map(kind -> [values]), format,
//                               removable, problem}
//   withoutMetadata(file, inspection) -> a File with the same name, or the file
//
// Every reader is bounded (see each module's limits) and a file it cannot read
// is reported as "could not check", never as clean.

import exifr from "exifr";

import { UnreadableFile, readSlice, startsWith } from "./bytes.js";
import { JPEG_MAGIC, jpegDroppedSegments, jpegWithoutMetadata } from "./jpeg.js";
import { classify } from "./kinds.js";
import { officeFields, isZip } from "./office.js";
import { isPdf, pdfFields } from "./pdf.js";
import { PNG_MAGIC, pngChunks, pngHasDroppable, pngTextFields, pngWithoutMetadata } from "./png.js";

const EXIF_OPTIONS = {
  tiff: true,
  exif: true,
  gps: true,
  xmp: true,
  iptc: true,
  icc: false,
  ihdr: false,
  jfif: false,
  interop: false,
  makerNote: false,
  userComment: false,
  translateKeys: true,
  translateValues: true,
  reviveValues: true,
  mergeOutput: true,
  silentErrors: false,
};
const OFFICE_EXTENSIONS = /\.(docx|docm|dotx|xlsx|xlsm|pptx|pptm|odt|ods|odp|odg)$/i;

async function exifOf(file) {
  try {
    return (await exifr.parse(file, EXIF_OPTIONS)) || {};
  } catch (error) {
    throw new UnreadableFile(`its EXIF could not be read (${error && error.message})`);
  }
}

function exifKinds(exif, into) {
  // Coordinates in one readable pair instead of degrees, minutes and references.
  const { latitude, longitude } = exif;
  const rest = Object.fromEntries(
    Object.entries(exif).filter(([name]) => !/^GPS(Latitude|Longitude)(Ref)?$|^(latitude|longitude)$/.test(name)),
  );
  const kinds = classify(rest, into);
  if (Number.isFinite(latitude) && Number.isFinite(longitude)) {
    const place = kinds.get("place") || [];
    kinds.set("place", [`${latitude.toFixed(5)}, ${longitude.toFixed(5)}`, ...place].slice(0, 4));
  }
  return kinds;
}

const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "heim", "heis", "mif1", "msf1", "avif"]);

function isHeifOrTiff(head) {
  const tiff = startsWith(head, [0x49, 0x49, 0x2a, 0]) || startsWith(head, [0x4d, 0x4d, 0, 0x2a]);
  const box = String.fromCharCode(...head.subarray(4, 12));
  return tiff || (box.startsWith("ftyp") && HEIF_BRANDS.has(box.slice(4)));
}

const PLAIN_TEXT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Whether `file` is plain text, which has no hidden fields to report: all of
 * it UTF-8, no control characters but tab, line breaks and form feed, and not
 * markup that can hold an author's name (RTF, HTML, XML, SVG start with `{\rtf`
 * or `<`). Larger files are not read whole here, so they stay "not checked".
 */
async function isPlainText(file) {
  if (file.size > PLAIN_TEXT_MAX_BYTES) return false;
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await readSlice(file, 0, file.size));
  } catch {
    return false;
  }
  const start = text.replace(/^\ufeff/, "").trimStart();
  if (start.startsWith("<") || start.startsWith("{\\rtf")) return false;
  return !/[\u0000-\u0008\u000b\u000e-\u001f\u007f]/.test(text);
}

async function inspect(file) {
  const head = await readSlice(file, 0, 16);
  if (startsWith(head, JPEG_MAGIC)) {
    const dropped = await jpegDroppedSegments(file); // throws on a damaged JPEG
    const removable = dropped.length > 0;
    let exif;
    try {
      exif = await exifOf(file);
    } catch (error) {
      // The segments are sound, so they can still be dropped, unread.
      return { format: "jpeg", kinds: new Map(), removable, problem: error.message };
    }
    const kinds = exifKinds(exif, new Map());
    if (dropped.some((segment) => segment.marker === 0xfe)) kinds.set("notes", kinds.get("notes") || []);
    const orientation = await exifr.orientation(file).catch(() => undefined);
    return { format: "jpeg", kinds, removable, orientation };
  }
  if (startsWith(head, PNG_MAGIC)) {
    const chunks = await pngChunks(file);
    const kinds = classify(await pngTextFields(file, chunks));
    if (chunks.some((chunk) => chunk.type === "eXIf")) exifKinds(await exifOf(file), kinds);
    return { format: "png", kinds, removable: pngHasDroppable(chunks) };
  }
  if (isHeifOrTiff(head)) {
    // iPhone photos (HEIC) and camera raw files: read, but not rewritten here.
    return { format: "picture", kinds: exifKinds(await exifOf(file), new Map()), removable: false };
  }
  if (isPdf(head)) return { format: "pdf", kinds: classify(await pdfFields(file)), removable: false };
  if (isZip(head) && OFFICE_EXTENSIONS.test(file.name)) {
    return { format: "office", kinds: classify(await officeFields(file)), removable: false };
  }
  if (await isPlainText(file)) return { format: "text", kinds: new Map(), removable: false, plain: true };
  return { format: "other", kinds: new Map(), removable: false, unknown: true };
}

/** What `file` gives away; `problem` is set when it could not be read. */
export async function inspectAttachment(file) {
  try {
    return await inspect(file);
  } catch (error) {
    const problem = error instanceof UnreadableFile ? error.message : "it could not be read";
    return { format: "unreadable", kinds: new Map(), removable: false, problem };
  }
}

/** A copy of a JPEG or PNG without its metadata (same name and type); else the file. */
export async function withoutMetadata(file, inspection) {
  if (!inspection || !inspection.removable) return file;
  const blob =
    inspection.format === "jpeg"
      ? await jpegWithoutMetadata(file, inspection.orientation)
      : await pngWithoutMetadata(file);
  return new File([blob], file.name, { type: file.type });
}
