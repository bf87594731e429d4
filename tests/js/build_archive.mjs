// Test helper: runs relay/web/js/tar.js under node on the inputs described by
// the JSON file in argv[2] ({message, language, day, files: [{name, path}], conversation?})
// and writes the padded archive to stdout, so that Python can compare it with
// relay.container's bytes.
import { openAsBlob } from "node:fs";
import { readFile } from "node:fs/promises";
import { planSubmission, submissionStream } from "../../relay/web/js/tar.js";

const spec = JSON.parse(await readFile(process.argv[2], "utf8"));
const files = [];
for (const { name, path } of spec.files) {
  const blob = await openAsBlob(path);
  files.push({ name, size: blob.size, stream: () => blob.stream() });
}
const plan = planSubmission({
  message: spec.message,
  files,
  language: spec.language,
  day: spec.day,
  sealedBy: spec.sealed_by ?? "browser",
  conversation: spec.conversation ?? null,
});
let total = 0;
for await (const piece of submissionStream(plan)) {
  total += piece.length;
  if (!process.stdout.write(piece)) {
    await new Promise((resolve) => process.stdout.once("drain", resolve));
  }
}
if (total !== plan.paddedLength) {
  throw new Error(`stream gave ${total} bytes, the plan said ${plan.paddedLength}`);
}
process.stderr.write(JSON.stringify({ files: plan.files, paddedLength: plan.paddedLength }) + "\n");
