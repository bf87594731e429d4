// The conversation part of the form page with JavaScript on
// (docs/conversations.md, section 9): a codename made in this browser and shown before sending,
// the conversation fields sealed into the tip, and the "read replies" form
// taken over so that everything happens here: derive (WebCrypto PBKDF2), fetch
// the whole ring's index, then the filled slots (POST bodies only), decrypt and
// check each reply (MAC first), show them, delete after reading.
//
// Nothing of a conversation is kept: no cookie, no storage, no cache (fetches
// are no-store, and the relay sends no-store too); codenames and keys live in
// this page's memory until it is closed. Every text comes from the page
// (#conversation-messages); replies are shown with textContent, never as HTML.

import {
  CodenameError,
  codenameText,
  foldCodename,
  foldWritten,
  generateCodename,
  writtenWords,
} from "./conversation/codename.js";
import { conversationFields, deriveConversationKeys, toHex } from "./conversation/derive.js";
import { DEFAULT_REPLY_LIMITS, ReplyError, openReply } from "./conversation/reply.js";
import { deleteToken, ringTags } from "./conversation/slots.js";

const DOWNLOAD_URL_LIFETIME_MS = 60_000;

function byId(id) {
  return document.getElementById(id);
}

function readJson(id) {
  const element = byId(id);
  return element ? JSON.parse(element.textContent) : null;
}

function fromHex(hex) {
  return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
}

/** Fills `%(name)s` placeholders of a translated text. */
function fill(text, values) {
  return text.replace(/%\((\w+)\)s/g, (match, name) => (name in values ? String(values[name]) : match));
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className) made.className = className;
  return made;
}

/** Fill an <ol class="codename-words"> with the 8 written words of `indices`. */
function showWords(list, indices) {
  if (!list) return;
  list.replaceChildren(...writtenWords(indices).map((word) => element("li", word)));
}

function postJson(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
}

export class ConversationPage {
  constructor(settings, messages) {
    this.settings = settings;
    this.messages = messages;
    this.relaySalt = fromHex(settings.salt);
    this.limits = {
      ...DEFAULT_REPLY_LIMITS,
      maxReplyBytes: settings.maxReplyBytes,
      maxEntries: settings.maxEntries,
    };
    this.derived = new Map();
    this.codenameInput = byId("js-codename");
    this.codenameStatus = byId("codename-status");
    this.codenameWords = byId("js-codename-words");
    /** The indices the tip being sent carries (null: a one-off tip). */
    this.sentIndices = null;
  }

  show() {
    if (this.codenameInput) {
      const indices = generateCodename();
      this.codenameInput.value = codenameText(indices);
      showWords(this.codenameWords, indices);
      // The big list follows the field: cleared (a one-off tip) or mistyped, it goes.
      this.codenameInput.addEventListener("input", () => this.followField());
      byId("codename-js").hidden = false;
      this.keysFor(indices); // ~0.1 s of native PBKDF2, done before the source presses Send
    }
    // The page's own "read replies" form (the no-JS one is inside <noscript>,
    // which this browser never renders): hidden, nameless and disabled until now.
    const readForm = byId("js-read-replies-form");
    if (readForm) {
      readForm.addEventListener("submit", (event) => {
        event.preventDefault(); // the codename never goes to the relay
        this.readReplies();
      });
      for (const button of readForm.querySelectorAll("button")) button.disabled = false;
      readForm.hidden = false;
    }
    document.documentElement.dataset.conversations = "browser";
  }

  followField() {
    try {
      showWords(this.codenameWords, foldCodename(this.codenameInput.value));
      this.codenameWords.hidden = false;
    } catch (error) {
      if (!(error instanceof CodenameError)) throw error;
      this.codenameWords.hidden = true;
    }
  }

  /** After the tip is stored: its codename once more (none for a one-off tip). */
  confirmSent() {
    const section = byId("js-sent-codename");
    if (!section || !this.sentIndices) return;
    showWords(byId("js-sent-codename-words"), this.sentIndices);
    section.hidden = false;
  }

  keysFor(indices) {
    const key = indices.join(",");
    if (!this.derived.has(key)) {
      this.derived.set(key, deriveConversationKeys(indices, this.relaySalt));
    }
    return this.derived.get(key);
  }

  codenameProblem(error) {
    if (!(error instanceof CodenameError)) throw error;
    if (error.kind === CodenameError.UNKNOWN_WORD) {
      return fill(this.messages.codename_unknown_word, { position: error.position });
    }
    if (error.kind === CodenameError.WORD_COUNT) {
      return fill(this.messages.codename_word_count, { count: error.count });
    }
    if (error.kind === CodenameError.CHECK_FAILED) return this.messages.codename_check_failed;
    if (error.kind === CodenameError.EMPTY) return this.messages.codename_empty;
    return this.messages.codename_too_long;
  }

  /**
   * For the tip about to be sealed: `{fields}` (conversationFields, or null for
   * a one-off tip when the codename field was cleared) or `{problem}`, a text
   * saying what is wrong with what was typed there.
   */
  async fieldsForTip() {
    this.sentIndices = null;
    if (!this.codenameInput) return { fields: null };
    let indices;
    try {
      indices = foldCodename(this.codenameInput.value); // checked before anything is derived
    } catch (error) {
      if (error instanceof CodenameError && error.kind === CodenameError.EMPTY) {
        return { fields: null };
      }
      return { problem: this.codenameProblem(error) };
    }
    const fields = conversationFields(await this.keysFor(indices));
    this.sentIndices = indices;
    return { fields };
  }

  async readReplies() {
    const out = byId("js-replies");
    out.hidden = false;
    out.dataset.state = "reading";
    out.replaceChildren(element("p", this.messages.reading, "status"));
    let indices;
    let checked;
    try {
      // The check word is checked here, before anything is derived or fetched.
      ({ indices, checked } = foldWritten(byId("js-read-codename").value));
    } catch (error) {
      out.replaceChildren(element("p", this.codenameProblem(error), "status status-warning"));
      out.dataset.state = "codename_error";
      return;
    }
    try {
      const keys = await this.keysFor(indices);
      const ring = await this.fetchRing(keys);
      this.render(out, keys, ring, checked);
      this.continueConversation(indices);
      out.dataset.state = "shown";
    } catch (error) {
      out.replaceChildren(element("p", this.messages.failed, "status status-warning"));
      out.dataset.state = "failed";
      console.error(error);
    }
  }

  async fetchRing(keys) {
    const ringSize = this.settings.ringSize;
    const tags = (await ringTags(keys.slotKey, ringSize)).map(toHex);
    const answer = await postJson(this.settings.indexPath, { tags });
    if (!answer.ok) throw new Error(`ring index: HTTP ${answer.status}`);
    const index = await answer.json();
    const replies = [];
    let notAuthentic = 0;
    for (let slot = 0; slot < ringSize; slot++) {
      if (!index.slots[slot]) continue;
      const fetched = await postJson(this.settings.fetchPath, { tag: tags[slot] });
      if (fetched.status === 404) continue; // deleted meanwhile
      if (!fetched.ok) throw new Error(`reply: HTTP ${fetched.status}`);
      const ciphertext = new Uint8Array(await fetched.arrayBuffer());
      try {
        const reply = await openReply(ciphertext, keys, slot, ringSize, this.limits);
        replies.push({ ...reply, slot, tag: tags[slot] });
      } catch (error) {
        if (!(error instanceof ReplyError)) throw error;
        notAuthentic += 1; // counted, never shown
      }
    }
    replies.sort((a, b) => a.n - b.n);
    let previous = 0;
    for (const reply of replies) {
      reply.missingBefore = Math.max(0, reply.n - previous - 1);
      previous = reply.n;
    }
    return { replies, notAuthentic };
  }

  render(out, keys, { replies, notAuthentic }, checked) {
    const parts = [element("p", this.messages.decrypted_here, "status")];
    if (notAuthentic) {
      const warning = element(
        "p",
        fill(this.messages.not_authentic, { count: notAuthentic }),
        "status status-warning",
      );
      warning.id = "js-not-authentic";
      parts.push(warning);
    }
    for (const reply of replies) {
      if (reply.missingBefore) {
        parts.push(element("p", fill(this.messages.gap, { count: reply.missingBefore }), "status status-warning gap"));
      }
      parts.push(this.replyArticle(keys, reply));
    }
    if (replies.length) {
      parts.push(element("p", this.messages.delete_advice, "hint"));
    } else {
      const none = checked
        ? element("p", this.messages.no_replies, "status")
        : element("p", this.messages.no_replies_unchecked, "status status-warning");
      none.id = "js-no-replies";
      parts.push(none);
    }
    out.replaceChildren(...parts);
  }

  replyArticle(keys, reply) {
    const article = element("article", undefined, "reply");
    article.dataset.n = String(reply.n);
    article.append(element("h3", fill(this.messages.reply_heading, { n: reply.n, day: reply.day })));
    article.append(element("pre", reply.message, "reply-text"));
    if (reply.attachments.length) {
      const list = element("ul", undefined, "reply-files");
      for (const attachment of reply.attachments) {
        const button = element("button", fill(this.messages.download, { name: attachment.name }));
        button.type = "button";
        button.addEventListener("click", () => download(attachment));
        const item = element("li");
        item.append(button);
        list.append(item);
      }
      article.append(list);
    }
    const remove = element("button", this.messages.delete, "delete-reply");
    remove.type = "button";
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      const token = toHex(await deleteToken(keys.deleteKey, reply.slot));
      const answer = await postJson(this.settings.deletePath, { tag: reply.tag, token });
      if (answer.status === 204 || answer.status === 404) {
        article.replaceChildren(element("p", this.messages.deleted, "status status-ok"));
      } else {
        remove.disabled = false;
      }
    });
    article.append(remove);
    return article;
  }

  /** The next tip from the form continues the conversation just read. */
  continueConversation(indices) {
    if (!this.codenameInput) return;
    this.codenameInput.value = codenameText(indices);
    showWords(this.codenameWords, indices);
    this.codenameWords.hidden = false;
    this.codenameStatus.textContent = this.messages.continues;
    this.codenameStatus.hidden = false;
  }
}

/** Save a reply's file: an in-memory Blob behind a short-lived object URL (nothing cached). */
function download(attachment) {
  const url = URL.createObjectURL(new Blob([attachment.data], { type: "application/octet-stream" }));
  const link = element("a");
  link.href = url;
  link.download = attachment.name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), DOWNLOAD_URL_LIFETIME_MS);
}

/**
 * This browser cannot read replies here (no WebCrypto, or no sealing): say so
 * where the "read replies" form would be. That form stays hidden: the codename
 * is never sent to the relay from a page with JavaScript on.
 */
export function conversationUnavailable() {
  const notice = byId("js-replies-unavailable");
  if (notice) notice.hidden = false;
}

/** The page's conversation part, or null when the relay keeps no conversations. */
export function setUpConversationPage() {
  const settings = readJson("conversation-settings");
  const messages = readJson("conversation-messages");
  if (!settings || !messages || !globalThis.crypto || !globalThis.crypto.subtle) return null;
  const page = new ConversationPage(settings, messages);
  page.show();
  return page;
}
