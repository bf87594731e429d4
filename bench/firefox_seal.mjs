// Driver for bench/upload.py: in-browser sealing in Debian's Firefox ESR at one
// Tor Browser security level (the prefs come in the spec), through
// puppeteer-core over WebDriver BiDi (nothing is downloaded). The page is the
// relay's own form; the attachment is a file on disk set on its file input, so
// the page never holds it whole; each run seals it with the page's bundle
// (tiprelaySeal) with at most `workers` Web Workers and reads the ciphertext to
// the end without uploading.
//
// Usage: node bench/firefox_seal.mjs '<json spec>'  (executablePath, profileDir,
// prefs, url, file, runs: [workers...], 0 meaning none: the page's own thread). stdout: JSON lines; {"event":"browser","pid"}
// first, then one {"event":"run", workers, workersUsed, seconds, total, expected,
// longestStallMs} per run.
import puppeteer from "puppeteer-core";

const spec = JSON.parse(process.argv[2]);
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const SEAL = async (workers) => {
  // How long the page's own thread is ever kept from running a 10 ms timer
  // while sealing: what a source feels as a frozen page.
  let last = performance.now();
  let longestStall = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestStall = Math.max(longestStall, now - last);
    last = now;
  }, 10);
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
  clearInterval(ticker);
  return {
    longestStallMs: Math.round(longestStall),
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
  // workers 0: the worker script is refused, so the page seals on its own thread
  // (what it does where no Worker can start, and what it did before workers).
  let refuseWorker = false;
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    if (refuseWorker && request.url().endsWith("/seal-worker.js")) {
      request.abort("blockedbyclient").catch(() => {});
    } else {
      request.continue().catch(() => {});
    }
  });
  await page.goto(spec.url, { waitUntil: "load" });
  await page.waitForFunction(() => typeof globalThis.tiprelaySeal !== "undefined");
  const input = await page.$("#attachment");
  await input.uploadFile(spec.file);
  for (const workers of spec.runs) {
    refuseWorker = workers === 0;
    emit({ event: "run", workers, ...(await page.evaluate(SEAL, Math.max(1, workers))) });
  }
} catch (error) {
  emit({ event: "error", message: String(error && error.stack ? error.stack : error) });
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
