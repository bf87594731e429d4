// Test helper: the age header the page makes (relay/web/js/age_header.js), with
// the OpenPGP wrapper the page loads (the built relay/web/static/dist/openpgp-wrap.js,
// byte for byte what the relay serves), so that Python can read its stanzas
// with the relay's own parser and open them with gpg. argv[2] is a JSON file:
//   {"cases": [{"recipients": [...], "openpgp_keys": {FPR: armored}}, ...]}
// stdout: [{"header": base64, "file_key": hex, "loads": n} | {"error": text}, ...]
import { readFile } from "node:fs/promises";
import { newAgeHeader } from "../../relay/web/js/age_header.js";

const WRAP = new URL("../../relay/web/static/dist/openpgp-wrap.js", import.meta.url);
const input = JSON.parse(await readFile(process.argv[2], "utf8"));
const output = [];
for (const { recipients, openpgp_keys: openpgpKeys } of input.cases) {
  let loads = 0;
  const loadWrap = () => {
    loads += 1;
    return import(WRAP.href);
  };
  try {
    const { header, fileKey } = await newAgeHeader(recipients, { openpgpKeys, loadWrap });
    output.push({
      header: Buffer.from(header).toString("base64"),
      file_key: Buffer.from(fileKey).toString("hex"),
      loads,
    });
  } catch (error) {
    output.push({ error: String(error && error.message), loads });
  }
}
process.stdout.write(JSON.stringify(output));
