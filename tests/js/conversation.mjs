// Test helper: runs relay/web/js/conversation on the shared vectors so Python can
// compare every value with tests/vectors/conversation.json. argv[2] is a JSON file:
//   {"vectors": path, "open": [{codename, slot, ciphertext}], "fold": [texts],
//    "generate": count, "bench": rounds}
// stdout: {"codenames": [...], "folding": [...], "replies": [...], "opened": [...],
//          "bench_seconds": [...]}: what the JS computed, in the vectors' shape.
import { readFile } from "node:fs/promises";
import { CodenameError, MAX_INPUT_CHARS, checkIndex, codenameText, foldCodename, generateCodename } from "../../relay/web/js/conversation/codename.js";
import {
  codenameIkm,
  codenameSalt,
  conversationFields,
  deriveConversationKeys,
  encodeIndices,
  toHex,
} from "../../relay/web/js/conversation/derive.js";
import { DEFAULT_REPLY_LIMITS, ReplyError, openReply, readReply } from "../../relay/web/js/conversation/reply.js";
import { DEFAULT_RING_SIZE, deleteToken, deleteTokenHash, ringTags, slotOfReply, slotTag } from "../../relay/web/js/conversation/slots.js";
import { WORDS } from "../../relay/web/js/conversation/wordlist.js";

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
const spec = JSON.parse(await readFile(process.argv[2], "utf8"));
const vectors = JSON.parse(await readFile(spec.vectors, "utf8"));

function fold(text) {
  try {
    return { input: text, indices: foldCodename(text) };
  } catch (error) {
    if (!(error instanceof CodenameError)) throw error;
    return { input: text, error: error.kind, position: error.position, count: error.count };
  }
}

const keysOf = [];
const codenames = [];
for (const vector of vectors.codenames) {
  const relaySalt = fromHex(vector.relay_salt);
  const indices = vector.indices;
  const keys = await deriveConversationKeys(indices, relaySalt);
  keysOf.push(keys);
  const salt = codenameSalt(relaySalt);
  const tags = await ringTags(keys.slotKey, vectors.ring_size);
  const slots = [];
  for (const { n } of vector.slots) {
    const slot = slotOfReply(n, vectors.ring_size);
    const token = await deleteToken(keys.deleteKey, slot);
    const tag = toHex(await slotTag(keys.slotKey, slot));
    if (tag !== toHex(tags[slot])) throw new Error("ringTags disagrees with slotTag");
    slots.push({
      n,
      slot,
      tag,
      delete_token: toHex(token),
      delete_token_hash: toHex(await deleteTokenHash(token)),
    });
  }
  codenames.push({
    words: codenameText(indices),
    check: checkIndex(indices),
    typed: vector.typed.map((text) => fold(text).indices ?? fold(text)),
    password: toHex(encodeIndices(indices)),
    salt: toHex(salt),
    ikm: toHex(await codenameIkm(indices, salt)),
    reply_identity_secret: toHex(keys.replyIdentitySecret),
    reply_identity: keys.replyIdentity,
    reply_recipient: keys.replyRecipient,
    slot_key: toHex(keys.slotKey),
    auth_key: toHex(keys.authKey),
    delete_key: toHex(keys.deleteKey),
    conversation_id: toHex(keys.conversationId),
    fields: conversationFields(keys),
    slots,
  });
}

async function readOutcome(promise) {
  try {
    const reply = await promise;
    const attachments = [];
    for (const { name, data } of reply.attachments) {
      attachments.push({ name, sha256: toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data))) });
    }
    return { reply: { n: reply.n, day: reply.day, message: reply.message, attachments } };
  } catch (error) {
    if (!(error instanceof ReplyError)) throw error;
    return { error: error.kind };
  }
}

const replies = [];
for (const vector of vectors.replies) {
  const keys = keysOf[vector.codename];
  replies.push(await readOutcome(readReply(fromHex(vector.plaintext), keys, vector.slot, vector.ring_size)));
}

const opened = [];
for (const item of spec.open ?? []) {
  opened.push(await readOutcome(openReply(fromHex(item.ciphertext), keysOf[item.codename], item.slot)));
}

const generated = Array.from({ length: spec.generate ?? 0 }, generateCodename);

const benchSeconds = [];
for (let round = 0; round < (spec.bench ?? 0); round++) {
  const start = performance.now();
  await deriveConversationKeys(generateCodename(), fromHex(vectors.codenames[0].relay_salt));
  benchSeconds.push((performance.now() - start) / 1000);
}

process.stdout.write(
  JSON.stringify({
    wordlist: WORDS,
    constants: { limits: DEFAULT_REPLY_LIMITS, ring_size: DEFAULT_RING_SIZE, max_input_chars: MAX_INPUT_CHARS },
    codenames,
    folding: vectors.folding.map((item) => fold(item.input)),
    folded: (spec.fold ?? []).map(fold),
    checks: vectors.checks.map((item) => checkIndex(item.indices)),
    replies,
    opened,
    generated,
    bench_seconds: benchSeconds,
  }),
);
