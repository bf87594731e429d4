// Plays a source's conversation in Debian's Firefox ESR (headless, WebDriver
// BiDi through puppeteer-core), for tests/test_firefox_conversation.py; the
// launch, the spec and the events come from tests/js/firefox_source.mjs.
//
// Usage: node tests/js/firefox_conversation.mjs '<json spec>'
// The spec (tests/support_firefox.py, conversation_spec): executablePath,
// profileDir, prefs, blockScripts, url (the form page), message, typedCodename
// ("upper": the read-replies form gets the codename in upper case), timeoutMs.
//
// 1. Opens the form and reads the codename it shows: #js-codename (made in the
//    browser) with page scripts, the <noscript> #codename field (made by the
//    server) without. Sends the tip with it. Says {"event":"codename", words}.
// 2. Waits for "continue" on stdin (the test puts replies meanwhile).
// 3. Opens the form again, types the codename in the "read replies" form and
//    reports what the page shows.
// Every request is reported with its headers and body (BiDi network data
// collectors; "bodyCaptured" says whether Firefox gave the body).
//
// Without page scripts Firefox still has JavaScript on (Tor Browser's Safest
// blocks scripts with NoScript), so it parses <noscript> as text. NoScript
// emulates <noscript> on pages whose scripts it blocks; with "emulateNoscript"
// the driver does the same, after reporting whether the field was there before.

import { emit, emulateNoscript, isScript, nextCommand, runWithFirefox, spec } from "./firefox_source.mjs";

const started = Date.now();

async function captured(request, outcome) {
  const hasBody = request.hasPostData();
  let body = null;
  if (hasBody) {
    const content = await request.content();
    body = content === undefined ? null : Buffer.from(content).toString("base64");
  }
  return {
    method: request.method(),
    url: request.url(),
    headers: request.headers(),
    hasBody,
    bodyCaptured: !hasBody || body !== null,
    body,
    outcome,
  };
}

async function openForm(page, withScripts) {
  await page.goto(spec.url, { waitUntil: "load" });
  if (withScripts) {
    await page.waitForSelector("#codename-js:not([hidden])");
    return { noscriptFieldBefore: null, emulated: 0 };
  }
  const noscriptFieldBefore = await page.evaluate(() => Boolean(document.getElementById("codename")));
  const emulated = spec.emulateNoscript ? await emulateNoscript(page) : 0;
  return { noscriptFieldBefore, emulated };
}

async function drive(browser) {
  const withScripts = !spec.blockScripts;
  const page = await browser.newPage();
  page.setDefaultTimeout(spec.timeoutMs);
  const pending = [];
  const blockedScripts = [];
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    if (spec.blockScripts && isScript(request.url())) {
      blockedScripts.push(request.url());
      request.abort("blockedbyclient").catch(() => {});
      return;
    }
    request.continue().catch(() => {});
  });
  page.on("requestfinished", (request) => pending.push(captured(request, "finished")));
  page.on("requestfailed", (request) => pending.push(captured(request, "failed")));

  const first = await openForm(page, withScripts);
  const webAssembly = await page.evaluate(() => typeof WebAssembly);
  const codenameField = withScripts ? "#js-codename" : "#codename";
  const field = await page.$eval(codenameField, (element) => ({
    words: element.value,
    name: element.getAttribute("name"),
  }));
  await page.type("#message", spec.message);
  if (withScripts) {
    await page.click("#submission-form button[type=submit]");
    await page.waitForSelector("html[data-sealing-result=stored]");
  } else {
    await Promise.all([
      page.waitForNavigation({ waitUntil: "load" }),
      page.click("#submission-form button[type=submit]"),
    ]);
  }
  const afterTip = page.url();
  emit({ event: "codename", words: field.words });
  await nextCommand("continue");

  await openForm(page, withScripts);
  const typed = spec.typedCodename === "upper" ? field.words.toUpperCase() : field.words;
  // The page's script takes over its own form; the no-JS one is in <noscript>.
  await page.type(withScripts ? "#js-read-codename" : "#read-codename", typed);
  let shown;
  if (withScripts) {
    await page.click("#js-read-replies-form button[type=submit]");
    await page.waitForSelector("#js-replies[data-state=shown]");
    shown = await page.$eval("#js-replies", (element) => element.textContent);
  } else {
    await Promise.all([
      page.waitForNavigation({ waitUntil: "load" }),
      page.click("#read-replies-form button[type=submit]"),
    ]);
    shown = await page.evaluate(() => document.body.textContent);
  }
  const html = await page.content();
  const readUrl = page.url();
  const requests = await Promise.all(pending);
  emit({
    event: "result",
    codename: field,
    noscriptFieldBefore: first.noscriptFieldBefore,
    emulatedNoscript: first.emulated,
    webAssembly,
    afterTip,
    shown,
    html,
    readUrl,
    requests,
    blockedScripts,
    pageErrors,
    seconds: (Date.now() - started) / 1000,
  });
}

await runWithFirefox(drive);
