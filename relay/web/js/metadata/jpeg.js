// JPEG: the segments before the picture data (SOS), read and, on request,
// rewritten without what identifies the source. Lossless: the picture data
// (from SOS to the end) and the tables a decoder needs (DQT, DHT, SOFn, DRI)
// are copied byte for byte; nothing is decoded or re-encoded.
//
// Dropped: APP1 (EXIF, XMP), APP13 (IPTC), APP3-APP12 and APP15 (makers'
// blocks: previews, MPF second pictures, comments), APP2 other than ICC, COM.
// Kept: APP0 JFIF (pixel density), APP2 ICC_PROFILE (the colours), APP14
// Adobe (how to convert the colours; JFIF's own thumbnail, which may show the
// picture before it was cropped, is cut out), and the orientation: a phone photo
// saved sideways displays upright only with it, and it says nothing about the
// source. It goes back in as a minimal EXIF block holding that one field.

import { UnreadableFile, readSlice, startsWith } from "./bytes.js";

export const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const MAX_HEADER_BYTES = 16 * 1024 * 1024; // segments before the picture data
const MAX_SEGMENTS = 4096;
const SOS = 0xda;
const EOI = 0xd9;

const JFIF_HEADER_BYTES = 14; // "JFIF\0", version, units, densities, thumbnail size

function hasJfifThumbnail(marker, body) {
  return marker === 0xe0 && isKept(marker, body) && body.length > JFIF_HEADER_BYTES;
}

function jfifWithoutThumbnail(body) {
  const header = body.slice(0, JFIF_HEADER_BYTES);
  header[12] = 0;
  header[13] = 0;
  const length = header.length + 2;
  return new Uint8Array([0xff, 0xe0, length >> 8, length & 0xff, ...header]);
}

function isKept(marker, body) {
  if (marker === 0xe0) return startsWith(body, [0x4a, 0x46, 0x49, 0x46, 0]); // "JFIF\0"
  if (marker === 0xe2) return startsWith(body, new TextEncoder().encode("ICC_PROFILE\0"));
  if (marker === 0xee) return startsWith(body, new TextEncoder().encode("Adobe"));
  if (marker >= 0xe0 && marker <= 0xef) return false;
  return marker !== 0xfe; // COM
}

/** The segments before SOS: [{marker, start, end}] and where SOS starts. */
export async function jpegSegments(file) {
  const head = await readSlice(file, 0, MAX_HEADER_BYTES);
  if (!startsWith(head, JPEG_MAGIC)) throw new UnreadableFile("not a JPEG");
  const segments = [];
  let offset = 2;
  while (segments.length < MAX_SEGMENTS) {
    if (offset + 4 > head.length) throw new UnreadableFile("the JPEG ends before its picture");
    if (head[offset] !== 0xff) throw new UnreadableFile("a damaged JPEG segment");
    const marker = head[offset + 1];
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (marker === SOS) return { segments, pictureStart: offset };
    if (marker === EOI || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      throw new UnreadableFile("an unexpected JPEG marker");
    }
    const length = (head[offset + 2] << 8) | head[offset + 3];
    const end = offset + 2 + length;
    if (length < 2 || end > head.length) throw new UnreadableFile("a JPEG segment runs past the end");
    segments.push({ marker, start: offset, end, body: head.subarray(offset + 4, end) });
    offset = end;
  }
  throw new UnreadableFile("too many JPEG segments");
}

function orientationSegment(orientation) {
  // "Exif\0\0", big-endian TIFF header, one IFD with one SHORT entry, no next IFD.
  const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1];
  const body = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff, 0, orientation, 0, 0, 0, 0, 0, 0];
  const length = body.length + 2;
  return new Uint8Array([0xff, 0xe1, length >> 8, length & 0xff, ...body]);
}

/** A copy of the JPEG without identifying segments; `orientation` (1-8) is kept. */
export async function jpegWithoutMetadata(file, orientation) {
  const { segments, pictureStart } = await jpegSegments(file);
  const parts = [file.slice(0, 2)];
  if (Number.isInteger(orientation) && orientation > 1 && orientation <= 8) {
    parts.push(orientationSegment(orientation));
  }
  for (const segment of segments) {
    if (hasJfifThumbnail(segment.marker, segment.body)) parts.push(jfifWithoutThumbnail(segment.body));
    else if (isKept(segment.marker, segment.body)) parts.push(file.slice(segment.start, segment.end));
  }
  parts.push(file.slice(pictureStart));
  return new Blob(parts, { type: "image/jpeg" });
}

/** Names of the segments that would be dropped (COM's text counts as "comment"). */
export async function jpegDroppedSegments(file) {
  const { segments } = await jpegSegments(file);
  return segments.filter(
    (segment) => !isKept(segment.marker, segment.body) || hasJfifThumbnail(segment.marker, segment.body),
  );
}
