// Entry point of the browser bundle: progressive enhancement of the form
// (<form id="submission-form" action="/submit">). Without JavaScript, or in a
// browser that lacks what sealing needs, the form posts to /submit and the
// server encrypts (the page says so). Until this script has run, a browser
// with JavaScript on has no button that sends the form (see enableSend). With
// it, the submit is taken over: the
// browser builds the archive, encrypts it to the reviewers and uploads only
// ciphertext. Every text shown comes from the page (#sealing-messages), in the
// page's language; the data comes from #recipients and #sealing-settings.

import { conversationUnavailable, setUpConversationPage } from "./conversation_page.js";
import { recipientSetFingerprint } from "./fingerprint.js";
import { MetadataPanel } from "./metadata/panel.js";
import { loadOpenpgpWrap } from "./openpgp_loader.js";
import { canSealInBrowser, sealSubmission } from "./seal.js";
import { startUpload } from "./upload.js";

function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

function byId(id) {
  return document.getElementById(id);
}

class SealingPage {
  constructor(form, recipients, openpgpKeys, settings, messages) {
    this.form = form;
    this.recipients = recipients;
    this.openpgpKeys = openpgpKeys;
    this.settings = settings;
    this.messages = messages;
    this.status = byId("sealing-status");
    this.resumeButton = byId("sealing-resume");
    this.encryptBar = byId("encrypt-progress");
    this.uploadBar = byId("upload-progress");
    this.busy = false;
    this.upload = null;
  }

  show() {
    for (const element of document.querySelectorAll("#submission-status, [data-without-js]")) {
      element.hidden = true;
    }
    byId("browser-sealing").hidden = false;
    byId("recipient-fingerprint").textContent = recipientSetFingerprint(this.recipients);
    document.documentElement.dataset.sealingMode = "browser";
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.busy) this.submit();
    });
    this.resumeButton.addEventListener("click", () => this.resume());
    const metadataReport = byId("metadata-report");
    const fileInput = this.form.querySelector('input[type="file"]');
    if (metadataReport && fileInput) {
      this.metadata = new MetadataPanel(metadataReport, fileInput, this.messages);
    }
  }

  say(key, failed = false) {
    this.status.textContent = this.messages[key];
    this.status.dataset.state = failed ? "error" : key;
  }

  setBusy(busy) {
    this.busy = busy;
    for (const element of this.form.elements) {
      if (element.type === "submit" || element.tagName === "TEXTAREA" || element.type === "file") {
        element.disabled = busy;
      }
    }
  }

  checkLimits(message, files) {
    const messageBytes = new TextEncoder().encode(message).length;
    if (message.trim() === "" && files.length === 0) return "empty";
    if (files.length > this.settings.maxAttachments) return "too_many_files";
    if (messageBytes > this.settings.maxMessageBytes) return "message_too_long";
    const total = messageBytes + files.reduce((sum, file) => sum + file.size, 0);
    if (total > this.settings.maxSubmissionBytes) return "failed_too_large";
    return null;
  }

  async submit() {
    const message = this.form.elements.namedItem("message").value;
    const fileInput = this.form.querySelector('input[type="file"]');
    let files = fileInput ? Array.from(fileInput.files) : [];
    try {
      // Pictures without their metadata when the source left removal on.
      if (this.metadata) files = await this.metadata.prepare(files);
    } catch (error) {
      this.fail("failed_local", error);
      return;
    }
    const problem = this.checkLimits(message, files);
    if (problem) {
      this.say(problem, true);
      return;
    }
    // Conversation hook (conversation_page.js): the fields sealed into submission.json.
    const tip = this.conversation ? await this.conversation.fieldsForTip() : { fields: null };
    if (tip.problem) {
      this.status.textContent = tip.problem;
      this.status.dataset.state = "error";
      return;
    }
    this.setBusy(true);
    this.resumeButton.hidden = true;
    byId("sealing-progress").hidden = false;
    this.say("encrypting");
    let sealed;
    let plaintextDone = 0;
    const plaintextTotal = Math.max(
      1,
      new TextEncoder().encode(message).length + files.reduce((sum, file) => sum + file.size, 0),
    );
    const estimate = new TimeLeft(this.estimateOutput(), this.settings.language, plaintextTotal);
    try {
      sealed = await sealSubmission({
        message,
        files,
        language: this.settings.language,
        day: this.settings.day,
        recipients: this.recipients,
        openpgpKeys: this.openpgpKeys,
        conversation: tip.fields,
        maxWorkers: this.settings.sealWorkersMax,
        onPlaintext: (count) => {
          plaintextDone += count;
          this.encryptBar.value = Math.min(1, plaintextDone / plaintextTotal);
          estimate.update(plaintextDone);
          if (estimate.secondsLeft > this.settings.slowWarningSeconds) {
            this.warnSlow(estimate.text);
          }
        },
      });
    } catch (error) {
      this.fail("failed_local", error);
      return;
    }
    if (sealed.size > this.settings.maxSubmissionBytes) {
      sealed.stream.cancel();
      this.fail("failed_too_large");
      return;
    }
    this.sealed = sealed;
    // After "Stop", the stopped upload's late callbacks change nothing.
    const current = () => this.upload === upload;
    const upload = startUpload({
      stream: sealed.stream,
      size: sealed.size,
      settings: this.settings,
      onProgress: (sent, total) => {
        if (!current()) return;
        this.uploadBar.value = sent / Math.max(1, total);
        if (this.status.dataset.state === "retrying") this.say("encrypting");
      },
      onRetry: () => current() && this.say("retrying"),
      onSuccess: (receipt) => current() && this.succeed(receipt),
      onFailure: (failure) => current() && this.uploadFailed(failure),
    });
    this.upload = upload;
  }

  /**
   * Sealing here will take long: say so plainly, once, and let the source
   * choose: wait, or stop (to send fewer files, or to turn JavaScript off and
   * let the server encrypt). Nothing is switched on their behalf.
   */
  warnSlow(timeText) {
    if (this.slowNotice || !this.busy) return;
    const notice = document.createElement("div");
    notice.id = "sealing-slow";
    notice.className = "status status-warning";
    notice.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = this.messages.slow_sealing.replace("%(time)s", timeText);
    const stop = document.createElement("button");
    stop.type = "button";
    stop.id = "sealing-stop";
    stop.textContent = this.messages.stop_sealing;
    stop.addEventListener("click", () => this.stop());
    notice.append(text, stop);
    this.status.before(notice);
    this.slowNotice = notice;
  }

  clearSlowNotice() {
    if (this.slowNotice) this.slowNotice.remove();
    this.slowNotice = null;
  }

  /** The source chose to stop: end sealing and sending, delete what the relay holds. */
  stop() {
    this.clearSlowNotice();
    const upload = this.upload;
    this.upload = null;
    this.sealed = null;
    if (upload) upload.cancel().catch(() => {});
    this.resumeButton.hidden = true;
    this.estimateOutput();
    this.say("stopped");
    this.setBusy(false);
  }

  /** Where the time left is shown: right after the "Encrypted" bar. */
  estimateOutput() {
    let output = byId("encrypt-estimate");
    if (!output) {
      output = document.createElement("output");
      output.id = "encrypt-estimate";
      output.htmlFor = "encrypt-progress";
      this.encryptBar.after(output);
    }
    output.textContent = "";
    return output;
  }

  uploadFailed(failure) {
    if (failure.kind === "network") {
      this.say("failed_network", true);
      this.resumeButton.hidden = false;
      return;
    }
    const key = {
      too_large: "failed_too_large",
      storage_full: "failed_storage",
      refused: "failed_refused",
    }[failure.kind];
    // Delete what the server holds of this upload (it may already be gone).
    if (this.upload) this.upload.cancel().catch(() => {});
    this.fail(key || "failed_local", failure.cause);
  }

  resume() {
    if (!this.upload) return;
    this.resumeButton.hidden = true;
    this.say("encrypting");
    this.upload.resume();
  }

  fail(key, error) {
    this.clearSlowNotice();
    this.estimateOutput();
    this.say(key, true);
    this.setBusy(false);
    this.upload = null;
    if (error) console.error(error);
  }

  succeed(receipt) {
    this.clearSlowNotice();
    this.estimateOutput(); // nothing left to wait for
    this.encryptBar.value = 1;
    this.uploadBar.value = 1;
    this.say("done");
    if (this.sealed) {
      document.documentElement.dataset.sealingWorkers = String(this.sealed.workersUsed());
      this.sealed = null;
    }
    this.status.dataset.receipt = receipt || "";
    if (this.conversation) this.conversation.confirmSent();
    const after = byId("js-after-sending");
    if (after) after.hidden = false;
    this.form.reset();
    // Leave only the confirmation (which lives inside the form) on screen.
    const sealing = byId("browser-sealing");
    for (const child of this.form.children) {
      if (child !== sealing && !child.contains(sealing)) child.hidden = true;
    }
    this.upload = null;
    this.busy = false;
    document.documentElement.dataset.sealingResult = "stored";
  }
}

/**
 * An honest estimate of the time left, from the rate measured so far (sealing
 * and sending together: the upload pulls what is sealed). Nothing is shown
 * before two seconds of measurement; it changes at most once a second.
 */
class TimeLeft {
  constructor(output, language, total) {
    this.output = output;
    this.language = language;
    this.total = total;
    this.started = performance.now();
    this.shownAt = 0;
    this.secondsLeft = 0; // 0 until measured
    this.text = "";
  }

  update(done) {
    const now = performance.now();
    const elapsed = (now - this.started) / 1000;
    if (elapsed < 2 || now - this.shownAt < 1000 || done <= 0) return;
    this.shownAt = now;
    const seconds = Math.max(0, ((this.total - done) * elapsed) / done);
    const [value, unit] =
      seconds >= 5400 ? [Math.round(seconds / 3600), "hour"]
      : seconds >= 90 ? [Math.round(seconds / 60), "minute"]
      : [Math.max(1, Math.round(seconds)), "second"];
    try {
      const format = new Intl.NumberFormat(this.language, { style: "unit", unit, unitDisplay: "long" });
      this.text = format.format(value);
    } catch {
      this.text = `${value} ${unit}`;
    }
    this.secondsLeft = seconds;
    this.output.textContent = `\u2248 ${this.text}`;
    document.documentElement.dataset.sealingSecondsLeft = String(Math.round(seconds));
  }
}

/**
 * The form's Send button for pages with this script: hidden and disabled in
 * the page (the no-JS one is inside <noscript>, which a browser with
 * JavaScript on never renders), so nothing can send the form before this
 * script has decided how it is sealed.
 */
function enableSend() {
  const send = byId("js-send");
  if (!send) return;
  send.hidden = false;
  for (const button of send.querySelectorAll("button")) button.disabled = false;
}

/**
 * Where sealing here is not possible, the form goes to the server, which
 * encrypts (the page's no-JS status line says so and stays shown). No codename
 * rides along: the server's is in <noscript> and the browser's field has no
 * name. Replies cannot be read here either: the page says how to read them.
 */
function serverFallback() {
  enableSend();
  conversationUnavailable();
}

function main() {
  const form = byId("submission-form");
  const recipientsBlock = readJson("recipients");
  const settings = readJson("sealing-settings");
  const messages = readJson("sealing-messages");
  if (!form || !recipientsBlock || !settings || !messages || !canSealInBrowser()) {
    serverFallback();
    return;
  }
  const recipients = recipientsBlock.recipients;
  const openpgpKeys = recipientsBlock.openpgp_keys || {};
  if (Object.keys(openpgpKeys).length > 0 && !(globalThis.crypto && crypto.subtle)) {
    // OpenPGP.js needs WebCrypto, which only secure contexts have (https,
    // .onion in Tor Browser, localhost): without it, the server encrypts.
    serverFallback();
    return;
  }
  const page = new SealingPage(form, recipients, openpgpKeys, settings, messages);
  enableSend();
  if (recipientSetFingerprint(recipients) !== recipientsBlock.fingerprint) {
    // The page contradicts itself: refuse to seal, and refuse the no-JS path too.
    page.show();
    page.setBusy(true);
    page.say("fingerprint_mismatch", true);
    conversationUnavailable();
    return;
  }
  page.show();
  page.conversation = setUpConversationPage();
  if (!page.conversation) conversationUnavailable();
  if (Object.keys(openpgpKeys).length > 0) {
    // OpenPGP reviewers: fetch their wrapper now, while the source writes, so
    // that sending does not wait for it (a failure here is tried again then).
    loadOpenpgpWrap().catch(() => {});
  }
}

// For bench/upload.py and the tests: seal without uploading (no DOM needed).
globalThis.tiprelaySeal = Object.freeze({ sealSubmission, recipientSetFingerprint });

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", main);
} else {
  main();
}
