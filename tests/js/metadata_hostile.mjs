// Runs the page's metadata readers (relay/web/js/metadata, without exifr) on
// every file of a folder, and prints one JSON line per file: what happened and
// how long it took. Used by tests/test_metadata_readers.py.
//
//   node metadata_hostile.mjs FOLDER

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { UnreadableFile } from "../../relay/web/js/metadata/bytes.js";
import { jpegDroppedSegments, jpegWithoutMetadata } from "../../relay/web/js/metadata/jpeg.js";
import { officeFields } from "../../relay/web/js/metadata/office.js";
import { pdfFields } from "../../relay/web/js/metadata/pdf.js";
import { pngChunks, pngTextFields, pngWithoutMetadata } from "../../relay/web/js/metadata/png.js";

const folder = process.argv[2];
for (const name of readdirSync(folder).sort()) {
  const file = new File([readFileSync(join(folder, name))], name);
  const started = performance.now();
  const result = { name };
  try {
    if (name.endsWith(".jpg")) {
      result.dropped = (await jpegDroppedSegments(file)).length;
      result.stripped = Buffer.from(await (await jpegWithoutMetadata(file, 6)).arrayBuffer()).toString("base64");
    } else if (name.endsWith(".png")) {
      result.fields = await pngTextFields(file, await pngChunks(file));
      result.stripped = Buffer.from(await (await pngWithoutMetadata(file)).arrayBuffer()).toString("base64");
    } else if (name.endsWith(".docx")) {
      result.fields = await officeFields(file);
    } else if (name.endsWith(".pdf")) {
      result.fields = await pdfFields(file);
    }
    result.outcome = "read";
  } catch (error) {
    result.outcome = error instanceof UnreadableFile ? "unreadable" : `crash: ${error && error.stack}`;
  }
  result.ms = performance.now() - started;
  process.stdout.write(JSON.stringify(result) + "\n");
}
