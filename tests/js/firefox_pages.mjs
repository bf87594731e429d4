// Looks at the source pages in Debian's Firefox ESR (headless, WebDriver BiDi
// through puppeteer-core; nothing downloaded), for tests/test_firefox_pages.py:
// axe-core's accessibility rules on each page, a full-page screenshot of each
// at each width, and a submission made with the keyboard alone.
//
// Usage: node tests/js/firefox_pages.mjs '<json spec>'  (executablePath,
// profileDir, prefs, axeSource, pages: [{name, url}], widths, screenshotDir,
// keyboard: {url, message} or null, sends: [{name, url, how}] or absent: a
// tip sent from the form at url, "js" by the page's script, "form" as the
// no-JS form posts it, whose confirmation is then looked at like a page).
// stdout: JSON lines; {"event":"browser"}
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

/** Send a tip from the form at `url`; the page then shows the confirmation. */
async function sendTip(page, { url, how }) {
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("#codename-js:not([hidden])");
  await page.type("#message", "A tip, to see the confirmation.");
  if (how === "js") {
    await page.click("#js-send button");
    await page.waitForSelector("html[data-sealing-result=stored]", { timeout: 60_000 });
    return;
  }
  // What a browser with JavaScript off posts: the form's fields, the codename in
  // its field (the one the no-JS form has); the answer is the confirmation page.
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.evaluate(() => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = "/submit";
      form.enctype = "multipart/form-data";
      const fields = {
        lang: document.documentElement.lang,
        message: document.getElementById("message").value,
        codename: document.getElementById("js-codename").value,
      };
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    }),
  ]);
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
  for (const { name, url, how } of [...spec.pages, ...(spec.sends ?? [])]) {
    await page.setViewport({ width: spec.widths[0], height: 800 });
    if (how) await sendTip(page, { url, how });
    else await page.goto(url, { waitUntil: "load" });
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
