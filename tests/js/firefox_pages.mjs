// Looks at the source pages in Debian's Firefox ESR (headless, WebDriver BiDi
// through puppeteer-core; nothing downloaded), for tests/test_firefox_pages.py:
// axe-core's accessibility rules on each page, a full-page screenshot of each
// at each width, and a submission made with the keyboard alone.
//
// Usage: node tests/js/firefox_pages.mjs '<json spec>'  (executablePath,
// profileDir, prefs, axeSource, pages: [{name, url}], widths, screenshotDir,
// keyboard: {url, message} or null). stdout: JSON lines; {"event":"browser"}
// first, then {"event":"result", violations: {name: [...]}, screenshots: [...],
// keyboard: {...}}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const spec = JSON.parse(process.argv[2]);
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const axeSource = readFileSync(spec.axeSource, "utf8");

async function audit(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const results = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(" ")),
    }));
  });
}

async function submitWithTheKeyboard(page, { url, message }) {
  await page.goto(url, { waitUntil: "load" });
  const focusedId = () => page.evaluate(() => document.activeElement && document.activeElement.id);
  const focusedIsSubmit = () =>
    page.evaluate(() => document.activeElement && document.activeElement.type === "submit");
  let tabs = 0;
  while ((await focusedId()) !== "message") {
    if (++tabs > 40) throw new Error("Tab never reached the message field");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type(message);
  while (!(await focusedIsSubmit())) {
    if (++tabs > 80) throw new Error("Tab never reached the send button");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Enter");
  await page.waitForSelector("html[data-sealing-result=stored]", { timeout: 60_000 });
  return { tabs, stored: true };
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: spec.executablePath,
  headless: true,
  userDataDir: spec.profileDir,
  extraPrefsFirefox: spec.prefs,
  protocolTimeout: 120_000,
});
emit({ event: "browser", pid: browser.process().pid });
let exitCode = 0;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  const violations = {};
  const screenshots = [];
  for (const { name, url } of spec.pages) {
    await page.setViewport({ width: spec.widths[0], height: 800 });
    await page.goto(url, { waitUntil: "load" });
    violations[name] = await audit(page);
    for (const width of spec.widths) {
      await page.setViewport({ width, height: 800 });
      const path = join(spec.screenshotDir, `${name}-${width}px.png`);
      await page.screenshot({ path, fullPage: true });
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      screenshots.push({ path, width, overflow });
    }
  }
  const keyboard = spec.keyboard ? await submitWithTheKeyboard(page, spec.keyboard) : null;
  emit({ event: "result", violations, screenshots, keyboard });
} catch (error) {
  emit({ event: "error", message: String(error && error.stack ? error.stack : error) });
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
