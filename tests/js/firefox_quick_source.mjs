// A quick source in Debian's Firefox ESR (headless, WebDriver BiDi through
// puppeteer-core), for tests/test_before_the_script.py; the launch, the spec
// and the events come from tests/js/firefox_source.mjs.
//
// Usage: node tests/js/firefox_quick_source.mjs '<json spec>'
// The spec (tests/support_firefox.py source_spec, plus "codename"): the page
// is served through the test's proxy, which holds the bundle back.
//
// 1. Opens the form without waiting for it to load (it cannot: its deferred
//    script is held), waits until the page is parsed, then does what a quick
//    source could: the codename into every visible text field, Enter in each,
//    a click on every visible enabled button. Says {"event":"tried", typed,
//    clicked, navigated}; the test then releases the bundle.
// 2. Waits for the script to take over, reads the replies with the page's
//    own form (codename in upper case, Enter), and reports what it shows and
//    whether this is still the document of step 1 (no form was submitted).

import { emit, runWithFirefox, spec } from "./firefox_source.mjs";

const started = Date.now();

// Visible elements matching `selector`, in document order.
async function visible(page, selector) {
  const found = [];
  for (const handle of await page.$$(selector)) {
    const shown = await handle.evaluate(
      (element) => element.getClientRects().length > 0 && !element.closest("[hidden]"),
    );
    if (shown) found.push(handle);
  }
  return found;
}

async function sameDocument(page) {
  return page.evaluate(() => window.__sameDocument === true).catch(() => false);
}

async function tryEverything(page) {
  const done = { typed: 0, clicked: 0, navigated: false };
  for (const field of await visible(page, "input, textarea")) {
    const kind = await field.evaluate((element) => element.type);
    if (["file", "hidden", "checkbox", "radio", "submit", "button"].includes(kind)) continue;
    await field.type(spec.codename);
    await field.press("Enter");
    done.typed += 1;
    if (!(await sameDocument(page))) return { ...done, navigated: true };
  }
  for (const button of await visible(page, "button, input[type=submit]")) {
    if (await button.evaluate((element) => element.disabled)) continue;
    await button.click();
    done.clicked += 1;
    if (!(await sameDocument(page))) return { ...done, navigated: true };
  }
  return done;
}

async function drive(browser) {
  const page = await browser.newPage();
  page.setDefaultTimeout(spec.timeoutMs);
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  // The load event waits for the held script: do not wait for it here.
  const loaded = page.goto(spec.url, { waitUntil: "load" }).catch((error) => error);
  await page.waitForSelector("#js-replies");
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  const tried = await tryEverything(page);
  emit({ event: "tried", ...tried });
  if (tried.navigated) {
    emit({ event: "result", sameDocument: false, shown: "", webAssembly: null, pageErrors, seconds: 0 });
    return;
  }

  // A form submitted in step 1 replaces this document, and the script never
  // takes over it: fail within a minute rather than at the spec's timeout.
  await page.waitForSelector("html[data-conversations=browser]", { timeout: 60_000 });
  await loaded;
  const still = await sameDocument(page);
  await page.type("#js-read-codename", spec.codename.toUpperCase());
  await page.keyboard.press("Enter");
  await page.waitForSelector("#js-replies[data-state=shown]");
  const shown = await page.$eval("#js-replies", (element) => element.textContent);
  emit({
    event: "result",
    sameDocument: still,
    shown,
    webAssembly: await page.evaluate(() => typeof WebAssembly),
    pageErrors,
    seconds: (Date.now() - started) / 1000,
  });
}

await runWithFirefox(drive);
