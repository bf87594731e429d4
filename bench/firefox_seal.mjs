// Driver for bench/upload.py: in-browser sealing in Debian's Firefox ESR at one
// Tor Browser security level (the prefs come in the spec), through
// puppeteer-core over WebDriver BiDi (nothing is downloaded). The page is the
// relay's own form; the attachment is a file on disk set on its file input, so
// the page never holds it whole; each run seals it with the page's bundle
// (tiprelaySeal) with at most `workers` Web Workers and reads the ciphertext to
// the end without uploading.
//
// Usage: node bench/firefox_seal.mjs '<json spec>'  (executablePath, profileDir,
// prefs, url, file, runs: [workers...]). stdout: JSON lines; {"event":"browser","pid"}
// first, then one {"event":"run", workers, workersUsed, seconds, total, expected} per run.
import puppeteer from "puppeteer-core";

const spec = JSON.parse(process.argv[2]);
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const SEAL = async (workers) => {
  const files = Array.from(document.getElementById("attachment").files);
  const { recipients } = JSON.parse(document.getElementById("recipients").textContent);
  const started = performance.now();
  const sealed = await globalThis.tiprelaySeal.sealSubmission({
    message: "bench",
    files,
    language: "en",
    day: "2026-01-01",
    recipients,
    onPlaintext: () => {},
    maxWorkers: workers,
  });
  const reader = sealed.stream.getReader();
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
  }
  return {
    seconds: (performance.now() - started) / 1000,
    total,
    expected: sealed.size,
    workersUsed: sealed.workersUsed(),
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
};

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: spec.executablePath,
  headless: true,
  userDataDir: spec.profileDir,
  extraPrefsFirefox: spec.prefs,
  protocolTimeout: 3_600_000,
});
emit({ event: "browser", pid: browser.process().pid });
let exitCode = 0;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(3_600_000);
  await page.goto(spec.url, { waitUntil: "load" });
  await page.waitForFunction(() => typeof globalThis.tiprelaySeal !== "undefined");
  const input = await page.$("#attachment");
  await input.uploadFile(spec.file);
  for (const workers of spec.runs) {
    emit({ event: "run", workers, ...(await page.evaluate(SEAL, workers)) });
  }
} catch (error) {
  emit({ event: "error", message: String(error && error.stack ? error.stack : error) });
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
