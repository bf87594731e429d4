// Fails when a built file names the folder it was built in, which would make
// the bundle differ per machine (and tell whoever reads it where it was built).
//
//   node scripts/check-bundle-paths.mjs FOLDER FILE...
//
// A leaked build folder is always followed by a path inside it: FOLDER/
// node_modules/..., FOLDER/relay/... So the check looks for FOLDER followed by
// "/" and the name of one of FOLDER's own entries, never for FOLDER alone: a
// short folder such as /app or /w occurs by chance in minified code. It looks
// for each way the text can stand in a bundle: as is, with non-ASCII letters
// escaped as esbuild's --charset=ascii writes them (\uXXXX), and with "/"
// escaped as "\/".
import { readdirSync, readFileSync } from "node:fs";

const [folder, ...files] = process.argv.slice(2);
if (!folder || files.length === 0) {
  console.error("usage: node scripts/check-bundle-paths.mjs FOLDER FILE...");
  process.exit(2);
}

function asciiEscaped(text) {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out += code < 0x80 ? text[i] : "\\u" + code.toString(16).padStart(4, "0");
  }
  return out;
}

const prefixes = new Set();
for (const entry of readdirSync(folder)) {
  const path = `${folder.replace(/\/+$/, "")}/${entry}`;
  for (const form of [path, asciiEscaped(path)]) {
    prefixes.add(form);
    prefixes.add(form.replaceAll("/", "\\/"));
    // esbuild may write \u escapes in upper or lower case.
    prefixes.add(form.replace(/\\u([0-9a-f]{4})/g, (_, hex) => "\\u" + hex.toUpperCase()));
  }
}

let leaked = false;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  for (const prefix of prefixes) {
    const at = text.indexOf(prefix);
    if (at >= 0) {
      console.error(`${file} names the folder it was built in (${folder}), at byte ${at}:` +
        ` it would differ per machine`);
      leaked = true;
      break;
    }
  }
}
process.exit(leaked ? 1 : 0);
