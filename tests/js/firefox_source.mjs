// Plays a source in Debian's Firefox ESR (headless, WebDriver BiDi through
// puppeteer-core; no browser is ever downloaded), for tests/test_firefox_source.py.
//
// Usage: node tests/js/firefox_source.mjs '<json spec>'
// The spec (built by tests/support_firefox.py): executablePath, profileDir,
// prefs (the security level's Firefox preferences), blockScripts (Safest: every
// script request is refused by URL, as NoScript does while javascript.enabled
// stays on), url, message, files, expect ("browser" | "server"), timeoutMs, and
// optionally stopWhenSlow (wait for the page's "this will take long" notice and
// press its Stop button), and optionally holdPatchAtOffset: the first PATCH at or past that Upload-Offset is
// held; the driver says {"event":"holding"} and waits for a "continue" line on
// stdin, releases it, and says {"event":"failed"} when it fails (the test has
// stopped the relay meanwhile) so that the test can start the relay again.
// With readMetadata, once the files are chosen the driver waits for the page's
// metadata panel (#metadata-report) to finish and reports it as "metadata":
// {files: {name: {kinds, text}}, stripChecked, documentsNoticeShown}.
//
// With blockScripts the driver also renders <noscript> once the page has
// loaded, as NoScript does on pages whose scripts it blocks (Firefox itself,
// with JavaScript on, parses <noscript> as text): the no-JS Send button lives
// there. The result's "noscriptSendBefore" says whether it was there before.
//
// Every line on stdout is one JSON event; the last is {"event":"result", ...}.
// Exits non-zero on any failure, closing the browser first.
// tests/js/firefox_conversation.mjs imports spec, emit, nextCommand, isScript,
// emulateNoscript and runWithFirefox from here (this file drives only when run itself).

import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

export const spec = JSON.parse(process.argv[2]);
const started = Date.now();

export function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

export async function nextCommand(expected) {
  const { value, done } = await stdinLines.next();
  if (done || value.trim() !== expected) {
    throw new Error(`expected "${expected}" on stdin, got ${done ? "end of input" : value}`);
  }
}

/** Render every <noscript> as NoScript does where it blocks scripts; how many. */
export async function emulateNoscript(page) {
  return page.evaluate(() => {
    const elements = [...document.querySelectorAll("noscript")];
    for (const element of elements) {
      const template = document.createElement("template");
      template.innerHTML = element.textContent; // parsed as text while scripting is on
      element.replaceWith(template.content);
    }
    return elements.length;
  });
}

export function isScript(url) {
  const path = new URL(url).pathname;
  return path.endsWith(".js") || path.endsWith(".mjs");
}

// What the metadata panel says about each chosen file, once it has read them all.
async function readMetadataPanel(page) {
  await page.waitForSelector("#metadata-report[data-state=done]");
  return page.evaluate(() => ({
    files: Object.fromEntries(
      [...document.querySelectorAll("#metadata-files > li")].map((item) => [
        item.querySelector("strong").textContent,
        { kinds: item.dataset.kinds, text: item.textContent },
      ]),
    ),
    stripChecked: document.getElementById("metadata-strip").checked,
    documentsNoticeShown: !document.getElementById("metadata-documents").hidden,
  }));
}

async function drive(browser) {
  const page = await browser.newPage();
  page.setDefaultTimeout(spec.timeoutMs);
  const requests = [];
  const blockedScripts = [];
  const pageErrors = [];
  let held = null;
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("requestfailed", (request) => {
    if (held && request === held) {
      held = "released";
      emit({ event: "failed", url: request.url() });
    }
  });
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const headers = request.headers();
    const offset = headers["upload-offset"] === undefined ? null : Number(headers["upload-offset"]);
    requests.push({ method: request.method(), url: request.url(), offset });
    const refused = (spec.blockUrlsEnding || []).some((end) => request.url().endsWith(end));
    if ((spec.blockScripts && isScript(request.url())) || refused) {
      blockedScripts.push(request.url());
      request.abort("blockedbyclient").catch(() => {});
      return;
    }
    if (
      request.method() === "PATCH" &&
      held === null &&
      spec.holdPatchAtOffset !== undefined &&
      offset >= spec.holdPatchAtOffset
    ) {
      held = request;
      emit({ event: "holding", offset });
      nextCommand("continue").then(
        () => request.continue().catch(() => {}),
        (error) => emit({ event: "error", message: String(error) }),
      );
      return;
    }
    request.continue().catch(() => {});
  });

  await page.goto(spec.url, { waitUntil: "load" });
  let noscriptSendBefore = null;
  if (spec.blockScripts) {
    noscriptSendBefore = await page.evaluate(
      () => !!document.querySelector("#submission-form button[type=submit]:not([disabled])"),
    );
    await emulateNoscript(page);
  }
  const mode = await page.evaluate(() => document.documentElement.dataset.sealingMode || null);
  // What the page tells the source about who encrypts (read before any click).
  const shown = await page.evaluate(() => ({
    serverSealsNotice: !document.getElementById("submission-status").hidden,
    browserSealing: !document.getElementById("browser-sealing").hidden,
  }));
  await page.type("#message", spec.message);
  if (spec.files.length > 0) {
    const input = await page.$("#attachment");
    await input.uploadFile(...spec.files);
  }
  const metadata = spec.readMetadata ? await readMetadataPanel(page) : null;
  const wasm = await page.evaluate(() => typeof WebAssembly);
  let status = null;
  let sealing = null;
  if (spec.expect === "browser" && spec.stopWhenSlow) {
    // The page warns that this will take long; the source presses "Stop".
    await page.click("#submission-form button[type=submit]");
    await page.waitForSelector("#sealing-stop", { visible: true });
    const notice = await page.$eval("#sealing-slow p", (element) => element.textContent);
    await page.click("#sealing-stop");
    await page.waitForSelector("#sealing-status[data-state=stopped]");
    status = await page.$eval("#sealing-status", (element) => element.textContent);
    const after = await page.evaluate(() => ({
      noticeGone: !document.getElementById("sealing-slow"),
      canSendAgain: !document.querySelector("#submission-form button[type=submit]").disabled,
    }));
    sealing = { notice, ...after };
  } else if (spec.expect === "browser") {
    await page.click("#submission-form button[type=submit]");
    // tus retries by itself after a cut; if its retries ran out, press "Try again".
    const deadline = Date.now() + spec.timeoutMs;
    let resumes = 0;
    for (;;) {
      const state = await page.evaluate(() => ({
        stored: document.documentElement.dataset.sealingResult === "stored",
        resumeShown: !document.getElementById("sealing-resume").hidden,
        status: document.getElementById("sealing-status").dataset.state || null,
      }));
      if (state.stored) break;
      if (state.resumeShown && held === "released" && resumes < 3) {
        resumes += 1;
        await page.click("#sealing-resume");
      } else if (state.status === "error" && !state.resumeShown) {
        throw new Error(`the page reports an error: ${JSON.stringify(state)}`);
      }
      if (Date.now() > deadline) throw new Error(`not stored in time: ${JSON.stringify(state)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    status = await page.$eval("#sealing-status", (element) => element.textContent);
    sealing = await page.evaluate(() => ({
      workers: Number(document.documentElement.dataset.sealingWorkers),
      hardwareConcurrency: navigator.hardwareConcurrency,
    }));
  } else {
    await Promise.all([
      page.waitForNavigation({ waitUntil: "load" }),
      page.click("#submission-form button[type=submit]"),
    ]);
    status = await page.evaluate(() => document.title);
  }
  emit({
    event: "result",
    mode,
    noscriptSendBefore,
    shown,
    metadata,
    sealing,
    webAssembly: wasm,
    status,
    finalUrl: page.url(),
    requests,
    blockedScripts,
    pageErrors,
    seconds: (Date.now() - started) / 1000,
  });
}

export async function runWithFirefox(drive) {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: spec.executablePath,
    headless: true,
    userDataDir: spec.profileDir,
    extraPrefsFirefox: spec.prefs,
    protocolTimeout: spec.timeoutMs,
  });
  // Firefox leads its own process group (puppeteer starts it detached): the test
  // kills that group too if this driver is killed before closing it.
  emit({ event: "browser", pid: browser.process().pid });
  let exitCode = 0;
  try {
    await drive(browser);
  } catch (error) {
    emit({ event: "error", message: String(error && error.stack ? error.stack : error) });
    exitCode = 1;
  } finally {
    await browser.close().catch(() => {});
  }
  process.exit(exitCode);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runWithFirefox(drive);
}
