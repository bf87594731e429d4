// What a metadata field gives away, in six kinds the page names in plain words:
// place (GPS), device (make, model, serial), people (author, last editor,
// company), times, software, notes (comments, titles, descriptions). Fields that only say how to display the file
// (orientation, resolution, colour) are not listed.

export const KINDS = ["place", "device", "people", "times", "software", "notes"];

const PATTERNS = [
  ["place", /gps|latitude|longitude|altitude|location|city|country|sublocation/i],
  ["device", /^make$|model|serial|lens|camera|device|hostcomputer|ownername|imei/i],
  [
    "people",
    /author|creator$|^creator|artist|modifiedby|company|manager|copyright|by-?line|writer|rights|publisher|contributor|owner|user/i,
  ],
  ["times", /date|time|year|^created$|^modified$/i],
  ["notes", /comment|description|title|subject|keyword|caption|headline|instructions|label/i],
  ["software", /software|producer|application|creatortool|generator|tool$/i],
];

/** The kind of a field name, or null when it gives nothing away. */
export function kindOf(fieldName) {
  if (/^(orientation|[xy]resolution|resolutionunit|colorspace|imagewidth|imageheight)$/i.test(fieldName)) {
    return null;
  }
  // "CreatorTool" is the program, "Creator" the person: test software's names first.
  if (/creatortool|producer|software|application/i.test(fieldName)) return "software";
  for (const [kind, pattern] of PATTERNS) {
    if (pattern.test(fieldName)) return kind;
  }
  return null;
}

const MAX_VALUE_CHARS = 80;

/** A short, printable form of a field's value, for the source to recognise. */
export function shortValue(value) {
  let text;
  if (value instanceof Date) text = value.toISOString().slice(0, 19).replace("T", " ");
  else if (Array.isArray(value)) text = value.map((part) => shortValue(part)).join(", ");
  else if (value && typeof value === "object") text = Object.values(value).map(shortValue).join(", ");
  else text = String(value);
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}

/** Collect `{kind: [values]}` from a flat record of field name -> value. */
export function classify(record, into = new Map()) {
  for (const [name, value] of Object.entries(record || {})) {
    if (value === undefined || value === null || value === "") continue;
    const kind = kindOf(name);
    if (!kind) continue;
    const values = into.get(kind) || [];
    const shown = shortValue(value);
    if (shown && !values.includes(shown) && values.length < 4) values.push(shown);
    into.set(kind, values);
  }
  return into;
}
