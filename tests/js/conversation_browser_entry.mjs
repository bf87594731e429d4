// Test entry point: bundled by tests/test_conversation_browser.py with esbuild
// (as scripts/build-js bundles the page's code) and loaded into Chromium, so the
// conversation modules run in a real browser, with and without V8's JIT.
import { foldCodename } from "../../relay/web/js/conversation/codename.js";
import { conversationFields, deriveConversationKeys, toHex } from "../../relay/web/js/conversation/derive.js";
import { ReplyError, readReply } from "../../relay/web/js/conversation/reply.js";
import { slotTag } from "../../relay/web/js/conversation/slots.js";

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));

/** Runs the vectors' first codename and replies; returns what the JS computed. */
globalThis.runConversationVectors = async (vectors) => {
  const vector = vectors.codenames[0];
  const start = performance.now();
  const keys = await deriveConversationKeys(vector.indices, fromHex(vector.relay_salt));
  const seconds = (performance.now() - start) / 1000;
  const replies = [];
  for (const item of vectors.replies.filter((r) => r.codename === 0)) {
    try {
      const reply = await readReply(fromHex(item.plaintext), keys, item.slot, item.ring_size);
      replies.push({ label: item.label, n: reply.n, message: reply.message });
    } catch (error) {
      if (!(error instanceof ReplyError)) throw error;
      replies.push({ label: item.label, error: error.kind });
    }
  }
  return {
    seconds,
    typed: vector.typed.map(foldCodename),
    fields: conversationFields(keys),
    reply_identity: keys.replyIdentity,
    tag: toHex(await slotTag(keys.slotKey, vector.slots[0].slot)),
    replies,
  };
};
