// Bounded reads of a File/Blob: only the slices asked for are read.

export async function readSlice(blob, start, end) {
  const from = Math.max(0, Math.min(start, blob.size));
  const to = Math.max(from, Math.min(end, blob.size));
  return new Uint8Array(await blob.slice(from, to).arrayBuffer());
}

export function startsWith(bytes, prefix) {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

export function latin1(bytes) {
  let out = "";
  const step = 8192;
  for (let i = 0; i < bytes.length; i += step) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
  }
  return out;
}

/** Thrown when a file is malformed or over a limit: the page says it could not check it. */
export class UnreadableFile extends Error {}
