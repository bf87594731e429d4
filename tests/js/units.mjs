// Test helper: runs pure functions of relay/web/js under node, so Python can
// compare them with their Python twins. argv[2] is a JSON file:
//   {"padme": [lengths...], "fingerprint": [[recipients...], ...], "names": [raw names...]}
// stdout: the same keys with the JS results (names through one NameAllocator).
import { readFile } from "node:fs/promises";
import { recipientSetFingerprint } from "../../relay/web/js/fingerprint.js";
import { NameAllocator, sanitizeName } from "../../relay/web/js/names.js";
import { padmeLength } from "../../relay/web/js/padme.js";

const input = JSON.parse(await readFile(process.argv[2], "utf8"));
const names = new NameAllocator();
const output = {
  padme: (input.padme ?? []).map(padmeLength),
  fingerprint: (input.fingerprint ?? []).map(recipientSetFingerprint),
  sanitized: (input.names ?? []).map(sanitizeName),
  allocated: (input.names ?? []).map((name) => names.allocate(name)),
};
process.stdout.write(JSON.stringify(output));
