// Attachment names made safe for any reviewer's file system: the same rules,
// in the same order, as relay/container/names.py (read its docstring), so that
// a submission sealed in the browser holds the same names as one sealed by the
// server. tests/test_browser_container.py runs both on the same hostile names.

export const MAX_NAME_BYTES = 200;
const MAX_EXTENSION_CHARS = 16;
const DROPPED = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
const SPACE = /\p{Zs}/u;
const WINDOWS_FORBIDDEN = /[<>:"|?*]/g;
const WINDOWS_DEVICE = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])(?:\..*)?$/iu;
const encoder = new TextEncoder();

function utf8Length(text) {
  return encoder.encode(text).length;
}

function codePointLength(text) {
  return [...text].length;
}

/** `text` cut to at most `maxBytes` of UTF-8, never inside a character. */
function cutToBytes(text, maxBytes) {
  let out = "";
  let used = 0;
  for (const char of text) {
    const size = utf8Length(char);
    if (used + size > maxBytes) break;
    out += char;
    used += size;
  }
  return out;
}

function splitExtension(name) {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || codePointLength(name.slice(dot)) > MAX_EXTENSION_CHARS + 1) {
    return [name, ""];
  }
  return [name.slice(0, dot), name.slice(dot)];
}

function fit(name, maxBytes) {
  if (utf8Length(name) <= maxBytes) return name;
  const [stem, extension] = splitExtension(name);
  const room = maxBytes - utf8Length(extension);
  if (room < 1) return cutToBytes(name, maxBytes);
  return cutToBytes(stem, room) + extension;
}

function stripEnds(name) {
  // Python's lstrip(". -") then rstrip(". ").
  return name.replace(/^[. -]+/u, "").replace(/[. ]+$/u, "");
}

function sanitizeOnce(raw) {
  let name = raw.normalize("NFC");
  const parts = name.split(/[/\\]/);
  name = parts[parts.length - 1];
  let cleaned = "";
  for (const char of name) {
    if (DROPPED.test(char)) continue;
    cleaned += SPACE.test(char) ? " " : char;
  }
  name = stripEnds(cleaned.replace(WINDOWS_FORBIDDEN, "_"));
  if (WINDOWS_DEVICE.test(name)) name = "_" + name;
  return fit(name, MAX_NAME_BYTES);
}

/** One file name safe on Linux, macOS and Windows; may be empty. */
export function sanitizeName(raw) {
  let name = raw;
  // Removing one character can expose another rule, so run to a fixpoint.
  for (let pass = 0; pass < 8; pass++) {
    const cleaned = sanitizeOnce(name);
    if (cleaned === name) break;
    name = cleaned;
  }
  return name;
}

function collisionKey(name) {
  // Two names collide when Python's str.casefold() (full Unicode case folding)
  // makes them equal. JS has no casefold, but lower-, upper-, then lower-casing
  // each character on its own yields the same equivalence classes (ß, ẞ -> ss;
  // ﬁ -> fi; final ς -> σ; Cherokee; Greek iota subscripts) with one exception:
  // dotless ı, which folds to itself, not to i.
  let key = "";
  for (const char of name.normalize("NFC")) {
    key += char === "\u0131" ? char : char.toLowerCase().toUpperCase().toLowerCase();
  }
  return key;
}

/** Gives each attachment a sanitised name, unique ignoring case. */
export class NameAllocator {
  constructor() {
    this.taken = new Set();
    this.count = 0;
  }

  /** The name to store the next attachment under (`attachment-N` if nothing is left). */
  allocate(raw) {
    this.count += 1;
    const name = sanitizeName(raw) || `attachment-${this.count}`;
    const [stem, extension] = splitExtension(name);
    let candidate = name;
    let copy = 1;
    while (this.taken.has(collisionKey(candidate))) {
      copy += 1;
      const suffix = ` (${copy})`;
      const room = MAX_NAME_BYTES - utf8Length(suffix + extension);
      candidate = cutToBytes(stem, room).replace(/[. ]+$/u, "") + suffix + extension;
    }
    this.taken.add(collisionKey(candidate));
    return candidate;
  }
}
