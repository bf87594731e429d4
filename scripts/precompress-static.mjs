// Writes a gzip (.gz) and a brotli (.br) copy next to every file the relay
// serves from relay/web/static/ (the bundles and the CSS), for sources on slow
// Tor circuits; relay/server/static_files.py sends one when the browser asks
// for it. Called by scripts/build-js. Reproducible: Node's zlib writes no name
// and no time into the gzip header, and the same input and settings give the
// same bytes. These files carry nothing secret (BREACH needs a secret and
// attacker-chosen text in the same compressed response): nothing else the
// relay sends is ever compressed.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const VARIANTS = [".gz", ".br"];

function servedFiles(folder) {
  const found = [];
  for (const name of readdirSync(folder).sort()) {
    if (name.startsWith(".")) continue;
    const path = join(folder, name);
    const info = statSync(path);
    if (info.isDirectory()) found.push(...servedFiles(path));
    else if (info.isFile() && !VARIANTS.some((suffix) => name.endsWith(suffix))) found.push(path);
  }
  return found;
}

const folder = process.argv[2];
for (const path of servedFiles(folder)) {
  const data = readFileSync(path);
  writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
  writeFileSync(
    `${path}.br`,
    brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
  );
}
