// Codenames in the browser: the same generation and folding as
// relay/conversation/codename.py, step for step (docs/conversations.md
// "Folding"); tests/vectors/conversation.json holds both to the same results.

import { sha256 } from "@noble/hashes/sha2.js";
import { WORDS } from "./wordlist.js";

/** The secret words (their indices are all that derivation uses). */
export const CODENAME_WORDS = 7;
/** What the source writes down: the 7 words, then their check word. */
export const WRITTEN_WORDS = CODENAME_WORDS + 1;
const CHECK_LABEL = new TextEncoder().encode("tiprelay/codename-check/v1");
export const WORDLIST_SIZE = 7776;
export const MAX_INPUT_CHARS = 1000;

const INVISIBLE = new Set(
  "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f" +
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064" +
    "\u2066\u2067\u2068\u2069\u3164\ufe00\ufe0f\ufeff\uffa0",
);
const SEPARATORS = new Set(
  " \t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u1680\u2028\u2029" +
    "-\u2010\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\u30fc" +
    "_.,;:/\u00b7\u2022\u3001\u3002",
);
// Cyrillic letters that look like Latin ones (see codename.py for the choice).
const LOOKALIKE = new Map(Object.entries({
  "а": "a", "в": "b", "е": "e", "і": "i", "ј": "j", "к": "k", "м": "m",
  "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
  "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l",
}));
// The Cyrillic letter on each Latin letter's key: Russian ЙЦУКЕН, Ukrainian і.
const LAYOUT = new Map(Object.entries({
  "й": "q", "ц": "w", "у": "e", "к": "r", "е": "t", "н": "y", "г": "u", "ш": "i",
  "щ": "o", "з": "p", "ф": "a", "ы": "s", "в": "d", "а": "f", "п": "g", "р": "h",
  "о": "j", "л": "k", "д": "l", "я": "z", "ч": "x", "с": "c", "м": "v", "и": "b",
  "т": "n", "ь": "m", "і": "s",
}));
// Each Latin letter written with the Cyrillic letter said for it, one for one
// (q, w, x typed as Latin letters): see codename.py's TRANSLIT.
const TRANSLIT = new Map(Object.entries({
  "а": "a", "б": "b", "ц": "c", "д": "d", "е": "e", "э": "e", "є": "e", "ф": "f",
  "г": "g", "ґ": "g", "х": "h", "и": "i", "і": "i", "ї": "i", "й": "j", "к": "k",
  "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
  "у": "u", "в": "v", "ы": "y", "з": "z",
}));
// The same for a Ukrainian reader, for whom и is y.
const TRANSLIT_UK = new Map([...TRANSLIT, ["и", "y"]]);
const READINGS = [[LOOKALIKE, true], [LAYOUT, false], [TRANSLIT, true], [TRANSLIT_UK, true]];

const WORD_INDEX = new Map(WORDS.map((word, index) => [word, index]));
const PIECES = new Set(WORDS);
for (const word of WORDS) {
  if (word.includes("-")) for (const half of word.split("-")) PIECES.add(half);
}

/** Typed input that is not a codename; `kind` is one of the constants below. */
export class CodenameError extends Error {
  static EMPTY = "empty";
  static TOO_LONG = "too_long";
  static UNKNOWN_WORD = "unknown_word";
  static WORD_COUNT = "word_count";
  static CHECK_FAILED = "check_failed";

  constructor(kind, { position = null, count = null } = {}) {
    super(`codename: ${kind}`);
    this.name = "CodenameError";
    this.kind = kind;
    /** For unknown_word: which word (1 = first) is not on the list. */
    this.position = position;
    /** For word_count: how many list words the input held. */
    this.count = count;
  }
}

/** The check word's index of 7 indices: SHA-256(label || u16be each), first 4 bytes, mod 7776. */
export function checkIndex(indices) {
  const input = new Uint8Array(CHECK_LABEL.length + 2 * indices.length);
  input.set(CHECK_LABEL);
  indices.forEach((index, i) => {
    input[CHECK_LABEL.length + 2 * i] = index >> 8;
    input[CHECK_LABEL.length + 2 * i + 1] = index & 0xff;
  });
  const digest = sha256(input);
  const first = ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
  return first % WORDLIST_SIZE;
}

/** The 8 words a codename (7 indices) is written as: its words, then the check word. */
export function writtenWords(indices) {
  return [...indices, checkIndex(indices)].map((index) => WORDS[index]);
}

/** The 8 written words joined by spaces, as the source is shown them. */
export function codenameText(indices) {
  return writtenWords(indices).join(" ");
}

/** A uniform index below 7776 from the CSPRNG: 13 random bits, rejected when too big. */
function randomIndex() {
  const buffer = new Uint16Array(1);
  for (;;) {
    crypto.getRandomValues(buffer);
    const candidate = buffer[0] & 0x1fff;
    if (candidate < WORDLIST_SIZE) return candidate;
  }
}

/** A new codename: 7 independent uniform indices (about 90 bits). */
export function generateCodename() {
  return Array.from({ length: CODENAME_WORDS }, randomIndex);
}

function isLatin(char) {
  return char >= "a" && char <= "z";
}

function readWith(token, table, latinAllowed) {
  let out = "";
  for (const char of token) {
    if (latinAllowed && isLatin(char)) out += char;
    else if (table.has(char)) out += table.get(char);
    else return null;
  }
  return out;
}

/** A folded token as a word piece (look-alikes, the ЙЦУКЕН layout, then letter for letter), or null. */
export function readToken(token) {
  for (const [table, latinAllowed] of READINGS) {
    const reading = readWith(token, table, latinAllowed);
    if (reading !== null && PIECES.has(reading)) return reading;
  }
  return null;
}

/** Steps 1-4 of folding: the tokens of typed input. */
export function splitTokens(text) {
  let length = 0;
  for (const _ of text) {
    if (++length > MAX_INPUT_CHARS) throw new CodenameError(CodenameError.TOO_LONG);
  }
  const tokens = [];
  let current = "";
  for (const char of text.normalize("NFKC").toLowerCase()) {
    if (INVISIBLE.has(char)) continue;
    if (SEPARATORS.has(char)) {
      if (current) tokens.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current) tokens.push(current);
  return tokens;
}

/**
 * The 7 indices the source meant by `text` (8 words whose last is the check
 * word, or an old codename's 7); throws CodenameError if it is no codename.
 */
export function foldCodename(text) {
  return foldWritten(text).indices;
}

/** Like foldCodename: `{indices, checked}`, checked false for an old 7-word codename. */
export function foldWritten(text) {
  const readings = splitTokens(text).map(readToken);
  const found = [];
  let position = 0;
  while (position < readings.length) {
    const reading = readings[position];
    if (reading !== null && WORD_INDEX.has(reading)) {
      found.push(WORD_INDEX.get(reading));
      position += 1;
      continue;
    }
    const following = position + 1 < readings.length ? readings[position + 1] : null;
    const joined = `${reading}-${following}`;
    if (reading !== null && following !== null && WORD_INDEX.has(joined)) {
      found.push(WORD_INDEX.get(joined));
      position += 2;
      continue;
    }
    throw new CodenameError(CodenameError.UNKNOWN_WORD, { position: found.length + 1 });
  }
  if (found.length === 0) throw new CodenameError(CodenameError.EMPTY);
  if (found.length === CODENAME_WORDS) return { indices: found, checked: false }; // nothing to check
  if (found.length !== WRITTEN_WORDS) {
    throw new CodenameError(CodenameError.WORD_COUNT, { count: found.length });
  }
  const secret = found.slice(0, CODENAME_WORDS);
  if (checkIndex(secret) !== found[CODENAME_WORDS]) throw new CodenameError(CodenameError.CHECK_FAILED);
  return { indices: secret, checked: true };
}
