"""The age payload: STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015).

The plaintext is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305
under the payload key; the nonce is an 11-byte big-endian chunk counter and a
final byte that is 1 only for the last chunk. Truncation, reordering and
appending are therefore all detected. Only the last chunk may be short, and it
may be empty only when the whole plaintext is.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from . import primitives
from .errors import PayloadError

CHUNK_SIZE = 64 * 1024
SEALED_CHUNK_SIZE = CHUNK_SIZE + primitives.TAG_SIZE
NONCE_SIZE = 16  # the payload nonce stored after the header
PAYLOAD_LABEL = b"payload"
_MAX_COUNTER = (1 << 88) - 1


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    """HKDF(file key, salt = payload nonce, info = "payload")."""
    return primitives.hkdf_sha256(file_key, nonce, PAYLOAD_LABEL)


def _chunk_nonce(counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise PayloadError("The file is too large for age.")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def payload_length(plaintext_length: int) -> int:
    """Ciphertext bytes (after the 16-byte nonce) for a plaintext of this length."""
    if plaintext_length < 0:
        raise ValueError("length must not be negative")
    chunks = max(1, -(-plaintext_length // CHUNK_SIZE))
    return plaintext_length + chunks * primitives.TAG_SIZE


def check_payload_length(ciphertext_length: int) -> bool:
    """Whether a payload (after the nonce) of this length can be valid STREAM."""
    if ciphertext_length < primitives.TAG_SIZE:
        return False
    last = ciphertext_length % SEALED_CHUNK_SIZE
    if last == 0:
        return True  # every chunk full, the last one included
    # The last chunk is short: it needs a tag, and data unless it is alone.
    if ciphertext_length < SEALED_CHUNK_SIZE:
        return last >= primitives.TAG_SIZE
    return last > primitives.TAG_SIZE


class StreamEncryptor:
    """Seals a plaintext fed in pieces; constant memory (under two chunks)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != primitives.KEY_SIZE:
            raise ValueError("STREAM key must be 32 bytes")
        self._key = key
        self._counter = 0
        self._pending = bytearray()
        self._finished = False

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Seal every chunk that is certainly not the last; return the ciphertext."""
        if self._finished:
            raise ValueError("update() after finish()")
        self._pending += data
        if len(self._pending) <= CHUNK_SIZE:
            return b""
        out = []
        start = 0
        # Keep at least one byte back: the last chunk must be sealed as last.
        while len(self._pending) - start > CHUNK_SIZE:
            chunk = bytes(self._pending[start : start + CHUNK_SIZE])
            out.append(primitives.aead_seal(self._key, _chunk_nonce(self._counter, False), chunk))
            self._counter += 1
            start += CHUNK_SIZE
        del self._pending[:start]
        return b"".join(out)

    def finish(self) -> bytes:
        """Seal the last chunk (possibly a full one, or empty for an empty input)."""
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        last = bytes(self._pending)
        self._pending = bytearray()
        return primitives.aead_seal(self._key, _chunk_nonce(self._counter, True), last)


# --- Whole-file fast path -------------------------------------------------------
# Files are processed in blocks of BLOCK_CHUNKS chunks held in preallocated
# buffers (constant memory: about 13 MiB whatever the file size). Each block's
# chunks are sealed or opened in place, half of them on a second thread: cffi
# releases the GIL inside libsodium, so two cores do the work of one.

BLOCK_CHUNKS = 64
INLINE_CHUNKS = 4
_pool: ThreadPoolExecutor | None = None


class _Block:
    """The chunks of one block, being sealed or opened on the two worker threads."""

    def __init__(self, work: Callable[[int, int], None], count: int) -> None:
        global _pool
        self._halves: list[Future[None]] = []
        self._error: BaseException | None = None
        if count <= INLINE_CHUNKS:
            # A handoff to the threads costs more than opening a few chunks here
            # (a bundle of many small files is mostly such blocks).
            try:
                work(0, count)
            except BaseException as error:  # raised from wait(), like a thread's error
                self._error = error
            return
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="age-stream")
        middle = count // 2
        self._halves = [_pool.submit(work, 0, middle), _pool.submit(work, middle, count)]

    def wait(self) -> None:
        if self._error is not None:
            raise self._error
        for half in self._halves:
            half.result()


def readinto_of(src: object) -> Callable[[memoryview], int | None]:
    """``src.readinto``, or an equivalent built on ``src.read`` for streams without it."""
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        return readinto  # type: ignore[no-any-return]
    read: Callable[[int], bytes] = getattr(src, "read")  # noqa: B009

    def via_read(target: memoryview) -> int:
        data = read(len(target))
        target[: len(data)] = data
        return len(data)

    return via_read


def _zeroed_buffer(size: int) -> mmap.mmap:
    """A zero-filled block buffer whose pages the kernel supplies on first touch.

    ``bytearray(size)`` would write all of its zeros up front: for a bundle of
    many small files, that memset of five 4 MiB buffers per file cost more than
    the decryption itself. Anonymous memory costs only the pages a file uses.
    """
    return mmap.mmap(-1, size)


def _fill(readinto: Callable[[memoryview], int | None], buffer: mmap.mmap) -> int:
    """Fill ``buffer`` unless the input ends first (pipes give short reads)."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        got = readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


# A block processor: (input view, its size, first chunk index, is it the last
# block, output view) -> (work function over chunk ranges, chunk count,
# output length, a check to run once the work is done).
_Processor = Callable[
    [memoryview, int, int, bool, memoryview],
    tuple[Callable[[int, int], None], int, int, Callable[[], None]],
]


def _pipeline(
    readinto: Callable[[memoryview], int | None],
    in_size: int,
    out_size: int,
    process: _Processor,
) -> Iterator[memoryview]:
    """Run ``process`` over the input block by block, overlapping I/O and crypto.

    While block i is processed on the worker threads, the caller consumes
    block i-1's output (the yield) and block i+2 is read. Whether a block is
    the last one is known before it is processed, because block i+1 has
    already been read. Memory: three input and two output buffers.
    """
    inputs = [_zeroed_buffer(in_size) for _ in range(3)]
    outputs = [_zeroed_buffer(out_size) for _ in range(2)]
    sizes = [_fill(readinto, inputs[0]), 0, 0]
    if sizes[0] == in_size:
        sizes[1] = _fill(readinto, inputs[1])
    pending: tuple[_Block, Callable[[], None], memoryview] | None = None
    index = chunk = 0
    while True:
        size = sizes[index % 3]
        last = size < in_size or sizes[(index + 1) % 3] == 0
        out_view = memoryview(outputs[index % 2])
        work, count, out_length, check = process(
            memoryview(inputs[index % 3]), size, chunk, last, out_view
        )
        block = _Block(work, count)
        if pending is not None:
            pending[0].wait()
            pending[1]()
            yield pending[2]
        if last:
            block.wait()
            check()
            yield out_view[:out_length]
            return
        if sizes[(index + 1) % 3] == in_size:
            sizes[(index + 2) % 3] = _fill(readinto, inputs[(index + 2) % 3])
        else:
            sizes[(index + 2) % 3] = 0
        pending = (block, check, out_view[:out_length])
        index += 1
        chunk += count


def seal_blocks(
    key: bytes, readinto: Callable[[memoryview], int | None]
) -> Iterator[memoryview]:
    """Seal all input; yields views of a reused buffer (consume each before the next)."""

    def process(
        plain: memoryview, size: int, first: int, last_block: bool, sealed: memoryview
    ) -> tuple[Callable[[int, int], None], int, int, Callable[[], None]]:
        count = max(1, -(-size // CHUNK_SIZE))

        def seal_range(start: int, stop: int) -> None:
            for i in range(start, stop):
                chunk = plain[i * CHUNK_SIZE : min(size, (i + 1) * CHUNK_SIZE)]
                nonce = _chunk_nonce(first + i, last_block and i == count - 1)
                offset = i * SEALED_CHUNK_SIZE
                target = sealed[offset : offset + len(chunk) + primitives.TAG_SIZE]
                primitives.aead_seal_into(key, nonce, chunk, target)

        return seal_range, count, size + count * primitives.TAG_SIZE, lambda: None

    return _pipeline(
        readinto, CHUNK_SIZE * BLOCK_CHUNKS, SEALED_CHUNK_SIZE * BLOCK_CHUNKS, process
    )


def open_blocks(
    key: bytes, readinto: Callable[[memoryview], int | None]
) -> Iterator[memoryview]:
    """Open a sealed payload; yields views of authenticated plaintext in a reused buffer."""

    def process(
        sealed: memoryview, size: int, first: int, last_block: bool, plain: memoryview
    ) -> tuple[Callable[[int, int], None], int, int, Callable[[], None]]:
        count = -(-size // SEALED_CHUNK_SIZE)
        tail = size - (count - 1) * SEALED_CHUNK_SIZE if count else 0
        if last_block:
            _check_final_chunk(tail, first + max(count, 1) - 1, size == 0)
        failures: list[int] = []

        def open_range(start: int, stop: int) -> None:
            for i in range(start, stop):
                chunk = sealed[i * SEALED_CHUNK_SIZE : min(size, (i + 1) * SEALED_CHUNK_SIZE)]
                nonce = _chunk_nonce(first + i, last_block and i == count - 1)
                offset = i * CHUNK_SIZE
                target = plain[offset : offset + len(chunk) - primitives.TAG_SIZE]
                if not primitives.aead_open_into(key, nonce, chunk, target):
                    failures.append(i)

        def check() -> None:
            if not failures:
                return
            bad = min(failures)
            if last_block and bad == count - 1 and tail == SEALED_CHUNK_SIZE:
                cut = sealed[bad * SEALED_CHUNK_SIZE : size]
                _explain_unmarked_last_chunk(key, cut, first + bad)
            raise PayloadError(chunk=first + bad)

        return open_range, count, size - count * primitives.TAG_SIZE, check

    return _pipeline(
        readinto, SEALED_CHUNK_SIZE * BLOCK_CHUNKS, CHUNK_SIZE * BLOCK_CHUNKS, process
    )


def _check_final_chunk(length: int, index: int, payload_empty: bool) -> None:
    if payload_empty:
        raise PayloadError("The file is truncated (the payload is missing).", chunk=0)
    if length < primitives.TAG_SIZE:
        raise PayloadError("The file is truncated (it ends in the middle of a chunk).", chunk=index)
    if length == primitives.TAG_SIZE and index > 0:
        raise PayloadError(chunk=index)  # an empty last chunk is valid only alone


def _explain_unmarked_last_chunk(key: bytes, chunk: memoryview, index: int) -> None:
    """A full final chunk that opens as a middle chunk: the file was cut there."""
    scratch = memoryview(bytearray(CHUNK_SIZE))
    if primitives.aead_open_into(key, _chunk_nonce(index, False), chunk, scratch):
        raise PayloadError(f"The file is truncated (it ends after chunk {index}).",
                           chunk=index + 1)
