"""Property tests (hypothesis) for relay.crypto's age implementation.

Round trips hold for any plaintext and any way of feeding it in; and whatever
an attacker does to a file -- flipped, inserted or deleted header bytes,
invented stanzas, random text, flipped or cut or extended payloads, broken
armor -- decryption fails only with one of our typed errors (AgeError
subclasses), never with a ValueError, IndexError or UnicodeDecodeError from
deep inside, and never succeeds. Example counts are bounded so the module
runs in well under a minute on a shared two-core machine.
"""

from __future__ import annotations

import io
import itertools
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from relay.crypto import errors, primitives, stream
from relay.crypto.decrypt import decrypt_bytes, open_decrypted
from relay.crypto.encrypt import Encryptor, encrypt_bytes, encrypt_stream
from relay.crypto.format import Stanza, write_header
from relay.crypto.identities import X25519Identity
from relay.crypto.padding import padme_length
from relay.crypto.recipients import X25519Recipient
from relay.crypto.stream import CHUNK_SIZE, check_payload_length, payload_length

SEALED = CHUNK_SIZE + primitives.TAG_SIZE
IDENTITY = X25519Identity.generate()
OTHERS = [X25519Identity.generate() for _ in range(2)]
BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FAST, max_examples=25)


def _bytes_of_size(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# Sizes that matter: tiny, around every chunk boundary, and anything up to 3 chunks.
sizes = st.one_of(
    st.integers(0, 300),
    st.sampled_from([CHUNK_SIZE * k + d for k in (1, 2) for d in (-1, 0, 1)]),
    st.integers(0, 3 * CHUNK_SIZE + 17),
)
plaintexts = st.builds(_bytes_of_size, sizes, st.integers(0, 2**32))
small_plaintexts = st.builds(_bytes_of_size, st.integers(0, 2 * CHUNK_SIZE + 5), st.integers())


def _recipients(count: int) -> list[X25519Recipient]:
    return [IDENTITY.recipient, *(o.recipient for o in OTHERS[: count - 1])]


def _header_length(ciphertext: bytes) -> int:
    """Bytes up to and including the MAC line (the payload nonce follows)."""
    mac_line = ciphertext.index(b"\n---") + 1
    return ciphertext.index(b"\n", mac_line) + 1


def _decrypt_both_ways(data: bytes) -> bytes:
    """Decrypt with the one-shot and the streaming API; they must agree."""
    whole = decrypt_bytes(data, [IDENTITY])
    with open_decrypted(io.BytesIO(data), [IDENTITY]) as reader:
        assert reader.read() == whole
    return whole


def _streamed(data: bytes) -> bytes:
    with open_decrypted(io.BytesIO(data), [IDENTITY]) as reader:
        return reader.read()


def _whole(data: bytes) -> bytes:
    return decrypt_bytes(data, [IDENTITY])


def _only_age_errors(data: bytes) -> errors.AgeError:
    """Decrypting ``data`` must fail, and only with one of our typed errors.

    Both APIs are tried (one-shot and streaming); the streaming one's error is
    returned.
    """
    caught: errors.AgeError | None = None
    for attempt in (_whole, _streamed):
        try:
            attempt(data)
        except errors.AgeError as exc:
            caught = exc
        else:
            pytest.fail(f"a damaged file decrypted without an error ({attempt.__name__})")
    assert caught is not None
    return caught


# --- round trips -----------------------------------------------------------------------


@FAST
@given(plaintext=plaintexts, armor=st.booleans(), count=st.integers(1, 3))
def test_any_plaintext_round_trips_for_any_recipient_count(
    plaintext: bytes, armor: bool, count: int
) -> None:
    ciphertext = encrypt_bytes(plaintext, _recipients(count), armor=armor)
    assert _decrypt_both_ways(ciphertext) == plaintext
    for other in OTHERS[: count - 1]:
        assert decrypt_bytes(ciphertext, [other]) == plaintext


@FAST
@given(plaintext=plaintexts, cuts=st.lists(st.integers(0, 3 * CHUNK_SIZE + 17), max_size=8))
def test_incremental_encryptor_with_random_pieces_equals_encrypt_stream(
    plaintext: bytes, cuts: list[int]
) -> None:
    points = sorted({min(c, len(plaintext)) for c in cuts} | {0, len(plaintext)})
    encryptor = Encryptor([IDENTITY.recipient])
    pieces = [encryptor.start()]
    pieces += [encryptor.update(plaintext[a:b]) for a, b in itertools.pairwise(points)]
    pieces.append(encryptor.finish())
    incremental = b"".join(pieces)
    streamed = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), streamed, [IDENTITY.recipient])
    # Different random keys, but the same shape and the same plaintext.
    assert len(incremental) == len(streamed.getvalue())
    assert _decrypt_both_ways(incremental) == _decrypt_both_ways(streamed.getvalue()) == plaintext


@FEW
@given(plaintext=small_plaintexts, read_sizes=st.lists(st.integers(1, 70000), min_size=1))
def test_streaming_reader_returns_the_plaintext_for_any_read_sizes(
    plaintext: bytes, read_sizes: list[int]
) -> None:
    ciphertext = encrypt_bytes(plaintext, [IDENTITY.recipient])
    got = bytearray()
    with open_decrypted(io.BytesIO(ciphertext), [IDENTITY]) as reader:
        for size in read_sizes:
            got += reader.read(size)
        got += reader.read()
    assert bytes(got) == plaintext


# --- mutated headers -------------------------------------------------------------------


def _sample_file(plaintext: bytes, count: int) -> tuple[bytes, int]:
    data = encrypt_bytes(plaintext, _recipients(count))
    return data, _header_length(data)


@FAST
@given(
    count=st.integers(1, 3),
    position=st.integers(0, 10_000),
    mask=st.integers(1, 255),
)
def test_flipped_header_byte_fails_with_a_typed_error(count: int, position: int, mask: int) -> None:
    data, header_length = _sample_file(b"tip", count)
    position %= header_length
    damaged = bytearray(data)
    damaged[position] ^= mask
    _only_age_errors(bytes(damaged))


@FAST
@given(
    count=st.integers(1, 3),
    position=st.integers(0, 10_000),
    inserted=st.binary(min_size=1, max_size=8),
)
def test_bytes_inserted_into_the_header_fail_with_a_typed_error(
    count: int, position: int, inserted: bytes
) -> None:
    data, header_length = _sample_file(b"tip", count)
    position %= header_length
    _only_age_errors(data[:position] + inserted + data[position:])


@FAST
@given(count=st.integers(1, 3), position=st.integers(0, 10_000), length=st.integers(1, 40))
def test_bytes_deleted_from_the_header_fail_with_a_typed_error(
    count: int, position: int, length: int
) -> None:
    data, header_length = _sample_file(b"tip", count)
    position %= header_length
    _only_age_errors(data[:position] + data[position + length :])


argument_text = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)
random_stanzas = st.lists(
    st.builds(
        Stanza,
        type=argument_text,
        args=st.lists(argument_text, max_size=3).map(tuple),
        body=st.binary(max_size=120),
    ),
    max_size=4,
)


def _file_with(stanzas: list[Stanza], file_key: bytes, plaintext: bytes) -> bytes:
    """A well-formed age file with exactly these stanzas and a valid MAC and payload."""
    nonce = primitives.random_bytes(stream.NONCE_SIZE)
    sealer = stream.StreamEncryptor(stream.payload_key(file_key, nonce))
    payload = sealer.update(plaintext) + sealer.finish()
    return write_header(stanzas, file_key) + nonce + payload


@FAST
@given(stanzas=random_stanzas, plaintext=st.binary(max_size=200), mine_at=st.integers(0, 4))
def test_unknown_stanzas_are_ignored_beside_ours(
    stanzas: list[Stanza], plaintext: bytes, mine_at: int
) -> None:
    assume(all(s.type not in ("X25519", "scrypt") for s in stanzas))
    file_key = primitives.random_bytes(primitives.FILE_KEY_SIZE)
    mine = IDENTITY.recipient.wrap(file_key)
    position = min(mine_at, len(stanzas))
    data = _file_with(stanzas[:position] + mine + stanzas[position:], file_key, plaintext)
    assert _decrypt_both_ways(data) == plaintext


@FAST
@given(
    stanzas=random_stanzas,
    x25519_args=st.lists(argument_text, max_size=2).map(tuple),
    body=st.binary(max_size=60),
    scrypt_args=st.lists(argument_text, max_size=3).map(tuple),
)
def test_random_stanzas_without_ours_fail_with_a_typed_error(
    stanzas: list[Stanza], x25519_args: tuple[str, ...], body: bytes,
    scrypt_args: tuple[str, ...],
) -> None:
    file_key = primitives.random_bytes(primitives.FILE_KEY_SIZE)
    candidates = [*stanzas, Stanza("X25519", x25519_args, body)]
    caught = _only_age_errors(_file_with(candidates, file_key, b"tip"))
    assert isinstance(caught, errors.HeaderError | errors.NoIdentityMatchError)
    # A scrypt stanza (well-formed or not) beside anything else is a header error.
    mixed = [*stanzas, Stanza("scrypt", scrypt_args, body), *IDENTITY.recipient.wrap(file_key)]
    caught = _only_age_errors(_file_with(mixed, file_key, b"tip"))
    assert isinstance(caught, errors.HeaderError)


header_lines = st.lists(
    st.one_of(
        st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=80),
        st.sampled_from([b"-> X25519", b"-> scrypt", b"---", b"--- ", b"->", b"-> ", b""]),
        st.builds(lambda a, b: b"-> " + a.encode() + b" " + b.encode(), argument_text,
                  argument_text),
    ),
    max_size=8,
)


@FAST
@given(lines=header_lines, tail=st.binary(max_size=100), versioned=st.booleans())
def test_random_header_text_fails_with_a_typed_error(
    lines: list[bytes], tail: bytes, versioned: bool
) -> None:
    start = b"age-encryption.org/v1\n" if versioned else b""
    _only_age_errors(start + b"\n".join(lines) + b"\n" + tail)


@FAST
@given(data=st.binary(max_size=600))
def test_random_bytes_fail_with_a_typed_error(data: bytes) -> None:
    _only_age_errors(data)


# --- mutated payloads ------------------------------------------------------------------


@FAST
@given(plaintext=plaintexts, where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_flipped_payload_byte_names_its_chunk(plaintext: bytes, where: float, mask: int) -> None:
    data, header_length = _sample_file(plaintext, 1)
    position = header_length + int(where * (len(data) - header_length))
    damaged = bytearray(data)
    damaged[position] ^= mask
    caught = _only_age_errors(bytes(damaged))
    assert isinstance(caught, errors.PayloadError), repr(caught)
    offset = position - header_length - stream.NONCE_SIZE
    # A damaged nonce changes the payload key: the first chunk fails.
    assert caught.chunk == max(offset, 0) // SEALED
    assert f"chunk {caught.chunk}" in str(caught)


@FAST
@given(plaintext=plaintexts, where=st.floats(0, 1, exclude_max=True))
def test_truncation_anywhere_fails_with_a_typed_error(plaintext: bytes, where: float) -> None:
    data, header_length = _sample_file(plaintext, 2)
    cut = int(where * len(data))
    caught = _only_age_errors(data[:cut])
    if cut >= header_length + stream.NONCE_SIZE:
        assert isinstance(caught, errors.PayloadError), repr(caught)
    else:
        assert isinstance(caught, errors.HeaderError), repr(caught)


@FAST
@given(plaintext=plaintexts, extra=st.binary(min_size=1, max_size=SEALED + 20))
def test_appended_bytes_fail_with_a_payload_error(plaintext: bytes, extra: bytes) -> None:
    data, _ = _sample_file(plaintext, 1)
    caught = _only_age_errors(data + extra)
    assert isinstance(caught, errors.PayloadError), repr(caught)


@FEW
@given(plaintext=plaintexts)
def test_a_whole_sealed_chunk_removed_or_swapped_fails(plaintext: bytes) -> None:
    data, header_length = _sample_file(plaintext, 1)
    start = header_length + stream.NONCE_SIZE
    chunks = [data[i : i + SEALED] for i in range(start, len(data), SEALED)]
    assume(len(chunks) >= 2)
    head = data[:start]
    _only_age_errors(head + b"".join(chunks[:-1]))  # cut at a chunk boundary
    _only_age_errors(head + b"".join([chunks[1], chunks[0], *chunks[2:]]))
    _only_age_errors(head + b"".join([*chunks, chunks[-1]]))


# --- armor ----------------------------------------------------------------------------


@FAST
@given(
    plaintext=st.binary(max_size=300),
    position=st.integers(0, 10_000),
    operation=st.sampled_from(["flip", "insert", "delete", "truncate"]),
    noise=st.binary(min_size=1, max_size=4),
)
def test_mutated_armor_fails_with_a_typed_error_or_still_decrypts_the_same(
    plaintext: bytes, position: int, operation: str, noise: bytes
) -> None:
    armored = encrypt_bytes(plaintext, [IDENTITY.recipient], armor=True)
    position %= len(armored)
    if operation == "flip":
        mutated = bytearray(armored)
        mutated[position] ^= noise[0] or 1
        damaged = bytes(mutated)
    elif operation == "insert":
        damaged = armored[:position] + noise + armored[position:]
    elif operation == "delete":
        damaged = armored[:position] + armored[position + len(noise) :]
    else:
        damaged = armored[:position]
    try:
        result = decrypt_bytes(damaged, [IDENTITY])
    except errors.AgeError:
        return
    # Armor tolerates whitespace around it (and CRLF): that is no damage.
    assert damaged.strip() == armored.strip() or b"\r" in damaged
    assert result == plaintext


@FAST
@given(
    body=st.lists(
        st.one_of(
            st.text(
                st.characters(codec="ascii", exclude_characters="\n"), max_size=70
            ).map(str.encode),
            st.binary(max_size=70),
        ),
        max_size=6,
    ),
    with_end=st.booleans(),
    leading=st.sampled_from([b"", b"\n", b"  \r\n", b"junk\n"]),
)
def test_random_armor_fails_with_a_typed_error(
    body: list[bytes], with_end: bool, leading: bytes
) -> None:
    text = leading + BEGIN + b"\n" + b"\n".join(body) + (b"\n" + END + b"\n" if with_end else b"")
    _only_age_errors(text)


# --- payload lengths and padding ---------------------------------------------------------


def _is_valid_payload_length(length: int) -> bool:
    """Reference: some plaintext length n has payload_length(n) == length."""
    chunks = max(1, -(-length // SEALED))
    return any(
        n >= 0 and payload_length(n) == length
        for c in (chunks - 1, chunks, chunks + 1)
        for n in [length - c * primitives.TAG_SIZE]
    )


@FAST
@given(size=sizes, seed=st.integers(0, 2**16))
def test_check_payload_length_agrees_with_real_ciphertexts(size: int, seed: int) -> None:
    data, header_length = _sample_file(_bytes_of_size(size, seed), 1)
    real = len(data) - header_length - stream.NONCE_SIZE
    assert real == payload_length(size)
    assert check_payload_length(real)
    for delta in range(-20, 21):
        if real + delta >= 0:
            assert check_payload_length(real + delta) == _is_valid_payload_length(real + delta)


@settings(max_examples=500, deadline=None)
@given(length=st.integers(0, 2**40))
def test_check_payload_length_matches_the_set_of_possible_lengths(length: int) -> None:
    assert check_payload_length(length) == _is_valid_payload_length(length)


def test_check_payload_length_at_the_edges() -> None:
    tag = primitives.TAG_SIZE
    assert not check_payload_length(0)
    assert not check_payload_length(tag - 1)
    assert check_payload_length(tag)  # the empty plaintext
    assert check_payload_length(SEALED)  # one full chunk
    assert not check_payload_length(SEALED + tag)  # an empty chunk after a full one
    assert check_payload_length(SEALED + tag + 1)
    assert all(not check_payload_length(SEALED + k) for k in range(1, tag + 1))


@settings(max_examples=500, deadline=None)
@given(n=st.integers(0, 2**64))
def test_padme_is_at_least_the_length_idempotent_and_bounded(n: int) -> None:
    padded = padme_length(n)
    assert padded >= n
    assert padme_length(padded) == padded
    if n >= 256:
        assert padded - n <= n * 0.0625  # 2**-(bits of log2 n) <= 1/16 from 256 on
    if n >= 1:
        assert padded - n <= n * 0.12


@settings(max_examples=500, deadline=None)
@given(a=st.integers(0, 2**48), b=st.integers(0, 2**48))
def test_padme_is_monotone(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert padme_length(low) <= padme_length(high)


def test_padme_keeps_few_distinct_sizes() -> None:
    # The point of Padmé: far fewer distinct lengths than inputs.
    distinct = {padme_length(n) for n in range(1 << 16, 1 << 17)}
    assert len(distinct) == 2**5 + 1  # 5 significant bits, and 2**17 itself
    with pytest.raises(ValueError):
        padme_length(-1)
