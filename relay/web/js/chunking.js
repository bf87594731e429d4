// Re-cutting a byte stream into pieces of one exact size: the upload sends
// chunks of the relay's upload_chunk_bytes, the sealing pool reads whole runs
// of age payload chunks.

/**
 * A reader over `stream` whose reads return exactly `chunkSize` bytes (the last
 * one fewer), so the upload client never concatenates many small pieces.
 */
export function chunkingReader(stream, chunkSize) {
  const reader = stream.getReader();
  let carry = null;
  let finished = false;
  return {
    async read() {
      if (finished) return { value: undefined, done: true };
      const chunk = new Uint8Array(chunkSize);
      let filled = 0;
      while (filled < chunkSize) {
        let piece = carry;
        carry = null;
        if (piece === null) {
          const { value, done } = await reader.read();
          if (done) {
            finished = true;
            break;
          }
          piece = value;
        }
        const take = Math.min(piece.length, chunkSize - filled);
        chunk.set(piece.subarray(0, take), filled);
        filled += take;
        if (take < piece.length) carry = piece.subarray(take);
      }
      if (filled === 0) return { value: undefined, done: true };
      return { value: filled === chunkSize ? chunk : chunk.slice(0, filled), done: false };
    },
    cancel(reason) {
      finished = true;
      return reader.cancel(reason);
    },
  };
}
