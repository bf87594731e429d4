"""The submission archive: streaming writer, stock-tool compatibility, safe extraction."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
import tracemalloc
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.container import (
    ExtractLimits,
    NameAllocator,
    SubmissionArchive,
    build_archive,
    extract_submission,
    sanitize_name,
    tarformat,
)
from relay.container.names import MAX_NAME_BYTES
from relay.crypto.decrypt import open_decrypted
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.identities import X25519Identity
from relay.crypto.padding import padme_length
from relay.errors import ArchiveTooLargeError, ContainerError, LimitExceededError
from tests.support_process import run, spawned

DAY = "2026-11-25"
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ----------------------------------------------------------------


def unpadded_length(archive: bytes) -> int:
    """Where the end-of-archive blocks end, found by walking the headers."""
    offset = 0
    while archive[offset : offset + 512] != tarformat.ZERO_BLOCK:
        size = int(archive[offset + 124 : offset + 135], 8)
        offset += 512 + size + (-size % 512)
    return offset + 1024


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root (not following links) with file contents."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        found[relative] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object):
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def valid_meta() -> bytes:
    meta = {"format_version": 1, "language": "ru", "sealed_by": "server", "day": DAY}
    return json.dumps(meta).encode()


def crafted_tar(*members, fmt: int = tarfile.PAX_FORMAT, padded: bool = True) -> bytes:
    """A tar written by python's tarfile, ended (and padded) as tiprelay ends archives."""
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape"
    ) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
        end = archive.offset  # before tarfile's own end blocks and 10 KiB record fill
    body = buffer.getvalue()[:end] + tarformat.END_OF_ARCHIVE
    return body + bytes(padme_length(len(body)) - len(body)) if padded else body


def crafted_submission(*members, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A crafted tar with a valid message first and submission.json last."""
    return crafted_tar(
        member("message.txt", b"hello"), *members, member("submission.json", valid_meta()), fmt=fmt
    )


class Extraction:
    """Extracts into <tmp>/work/out and checks nothing else under <tmp> changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        self.outside = root / "outside"
        self.outside.mkdir()
        (self.outside / "keep.txt").write_bytes(b"untouched")
        self.dest = self.work / "out"

    def run(self, archive: bytes | io.RawIOBase, limits: ExtractLimits | None = None):
        stream = io.BytesIO(archive) if isinstance(archive, bytes) else archive
        return extract_submission(stream, self.dest, limits)  # type: ignore[arg-type]

    def assert_refused(self, archive, match: str, limits=None, error=ContainerError):
        before = tree(self.root)
        with pytest.raises(error, match=match):
            self.run(archive, limits)
        assert tree(self.root) == before, "a refused archive changed the file system"
        assert not self.dest.exists()


@pytest.fixture
def extraction(tmp_path: Path) -> Extraction:
    return Extraction(tmp_path)


class LazyStream(io.RawIOBase):
    """A readable stream over an iterator of chunks, holding at most one chunk."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class TrickleStream(io.RawIOBase):
    """Returns at most a few bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        data, self._data = bytes(self._data[:size]), self._data[size:]
        return data


# --- building ---------------------------------------------------------------

ATTACHMENTS = [
    ("../отчёт за 2024 год.pdf", b"%PDF-1.7 " * 1000),
    ("empty.txt", b""),
    ("a/b/photo.jpg", os.urandom(511)),
    ("Photo.JPG", os.urandom(512)),
    ("photo.jpg", os.urandom(513)),
    ("", b"nameless"),
]


def test_round_trip_keeps_message_attachments_and_meta(extraction: Extraction) -> None:
    archive = build_archive("Здравствуйте!\nпомогите", ATTACHMENTS, language="ru", day=DAY)
    result = extraction.run(archive)

    assert result.path == extraction.dest
    assert (extraction.dest / "message.txt").read_text("utf-8") == "Здравствуйте!\nпомогите"
    assert result.message_size == len("Здравствуйте!\nпомогите".encode())
    expected_names = [
        "отчёт за 2024 год.pdf",
        "empty.txt",
        "photo.jpg",
        "Photo (2).JPG",
        "photo (3).jpg",
        "attachment-6",
    ]
    assert result.files == [
        (name, len(data)) for name, (_, data) in zip(expected_names, ATTACHMENTS, strict=True)
    ]
    for name, (_, data) in zip(expected_names, ATTACHMENTS, strict=True):
        assert (extraction.dest / "files" / name).read_bytes() == data
    assert result.meta == {"format_version": 1, "language": "ru", "sealed_by": "server", "day": DAY}
    assert json.loads((extraction.dest / "submission.json").read_bytes()) == result.meta
    assert result.warnings == []
    assert sorted(os.listdir(extraction.dest)) == ["files", "message.txt", "submission.json"]


def test_submission_without_attachments_round_trips(extraction: Extraction) -> None:
    result = extraction.run(build_archive("", sealed_by="browser", language="uk", day=DAY))

    assert result.files == []
    assert result.message_size == 0
    assert result.meta["sealed_by"] == "browser" and result.meta["language"] == "uk"
    assert (extraction.dest / "message.txt").read_bytes() == b""
    assert list((extraction.dest / "files").iterdir()) == []


def test_entries_carry_mtime_zero_root_owner_no_owner_names_and_mode_0644() -> None:
    archive = build_archive("msg", ATTACHMENTS, day=DAY)
    with tarfile.open(fileobj=io.BytesIO(archive)) as parsed:
        members = parsed.getmembers()
    assert [m.name for m in members] == [
        "message.txt",
        "files/отчёт за 2024 год.pdf",
        "files/empty.txt",
        "files/photo.jpg",
        "files/Photo (2).JPG",
        "files/photo (3).jpg",
        "files/attachment-6",
        "submission.json",
    ]
    for entry in members:
        assert entry.isreg()
        assert (entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname) == (0, 0, 0, "", "")
        assert entry.mode == 0o644
        assert set(entry.pax_headers) <= {"path"}


def test_only_non_ascii_or_long_names_get_pax_headers() -> None:
    long_ascii = "n" * 120 + ".txt"
    archive = build_archive("m", [("plain.txt", b"1"), ("файл.txt", b"2"), (long_ascii, b"3")])
    with tarfile.open(fileobj=io.BytesIO(archive)) as parsed:
        pax = {m.name: m.pax_headers for m in parsed.getmembers()}
    assert pax["files/plain.txt"] == {}
    assert pax["files/файл.txt"] == {"path": "files/файл.txt"}
    assert pax["files/" + long_ascii] == {"path": "files/" + long_ascii}
    assert pax["message.txt"] == {} and pax["submission.json"] == {}


def test_ustar_headers_match_python_tarfile_byte_for_byte() -> None:
    archive = build_archive("message", [("notes.txt", b"x" * 700)], day=DAY)
    oracle = tarfile.TarInfo("files/notes.txt")
    oracle.size, oracle.mode, oracle.mtime = 700, 0o644, 0
    oracle.uname = oracle.gname = ""
    expected = oracle.tobuf(format=tarfile.USTAR_FORMAT)
    assert archive[1024:1536] == expected


def test_sizes_beyond_the_ustar_field_get_a_pax_size_record(extraction: Extraction) -> None:
    size = 9 * 2**30
    header = tarformat.file_header("files/huge.bin", size)
    with tarfile.open(fileobj=io.BytesIO(header), mode="r|") as parsed:
        entry = parsed.next()
    assert entry is not None
    assert (entry.name, entry.size, entry.pax_headers) == (
        "files/huge.bin",
        size,
        {"size": str(size)},
    )
    archive = tarformat.file_header("message.txt", 0) + header
    extraction.assert_refused(archive, "bytes of files", error=ArchiveTooLargeError)


def test_pax_record_lengths_count_their_own_digits() -> None:
    for size in range(1, 1200):
        record = tarformat.pax_record("path", "x" * size)
        length, _, _ = record.partition(b" ")
        assert int(length) == len(record)


def test_padded_length_is_the_padme_length_of_the_archive() -> None:
    for payload in (0, 1, 5000, 70_000, 1_000_003):
        stream = SubmissionArchive(language="en", sealed_by="server", day=DAY)
        parts = [stream.message("m"), stream.file_header("data.bin", payload)]
        parts += [stream.file_data(bytes(payload)), stream.file_end(), *stream.finish()]
        archive = b"".join(parts)

        end = unpadded_length(archive)
        assert len(archive) == stream.length == padme_length(end)
        assert archive[end - 1024 :].count(0) == len(archive) - end + 1024


def test_streaming_in_chunks_gives_the_same_bytes_as_building_at_once() -> None:
    data = os.urandom(300_000)
    stream = SubmissionArchive(language="ru", sealed_by="server", day=DAY)
    parts = [stream.message("текст"), stream.file_header("big.bin", len(data))]
    parts += [stream.file_data(data[i : i + 4096]) for i in range(0, len(data), 4096)]
    parts += [stream.file_end(), *stream.finish()]

    assert b"".join(parts) == build_archive("текст", [("big.bin", data)], day=DAY)
    assert stream.files == [("big.bin", len(data))]


def test_day_defaults_to_today_in_utc_and_nothing_finer() -> None:
    archive = build_archive("m")
    with tarfile.open(fileobj=io.BytesIO(archive)) as parsed:
        file = parsed.extractfile("submission.json")
        assert file is not None
        meta = json.loads(file.read())
    assert meta == {
        "format_version": 1,
        "language": "ru",
        "sealed_by": "server",
        "day": datetime.now(UTC).date().isoformat(),
    }


def test_writer_refuses_more_or_fewer_bytes_than_declared() -> None:
    stream = SubmissionArchive(language="ru", sealed_by="server")
    stream.message("m")
    stream.file_header("a.txt", 3)
    stream.file_data(b"ab")
    with pytest.raises(ContainerError, match="longer than its declared size"):
        stream.file_data(b"cd")
    with pytest.raises(ContainerError, match="1 bytes shorter"):
        stream.file_end()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["file_header"], "Cannot start an attachment"),
        (["message", "message"], "Cannot add the message"),
        (["message", "file_data"], "Cannot add attachment data"),
        (["message", "file_end"], "Cannot end an attachment"),
        (["message", "file_header", "finish"], "Cannot finish"),
        (["message", "finish", "file_header"], "Cannot start an attachment"),
    ],
)
def test_writer_refuses_calls_out_of_order(steps: list[str], message: str) -> None:
    stream = SubmissionArchive(language="ru", sealed_by="server")
    calls = {
        "message": lambda: stream.message("m"),
        "file_header": lambda: stream.file_header("a", 0),
        "file_data": lambda: stream.file_data(b""),
        "file_end": stream.file_end,
        "finish": stream.finish,
    }
    for step in steps[:-1]:
        calls[step]()
    with pytest.raises(ContainerError, match=message):
        calls[steps[-1]]()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"language": "ru; rm -rf"}, "not a language tag"),
        ({"sealed_by": "nobody"}, "sealed_by must be one of"),
        ({"day": "2026-11-25T10:00:00Z"}, "YYYY-MM-DD"),
    ],
)
def test_writer_refuses_bad_metadata(fields: dict[str, str], message: str) -> None:
    arguments = {"language": "ru", "sealed_by": "server", "day": DAY} | fields
    with pytest.raises(ContainerError, match=message):
        SubmissionArchive(**arguments)


def test_writer_refuses_a_message_utf8_cannot_hold() -> None:
    with pytest.raises(ContainerError, match="UTF-8"):
        SubmissionArchive(language="ru", sealed_by="server").message("lone \udc80 surrogate")


def test_stock_tar_extracts_the_padded_archive_to_the_same_bytes(tmp_path: Path) -> None:
    archive = build_archive("Сообщение", [*ATTACHMENTS, ("big.bin", os.urandom(10**6))], day=DAY)
    assert len(archive) - unpadded_length(archive) > 10240  # more than one tar record of zeros
    archive_path = tmp_path / "submission.tar"
    archive_path.write_bytes(archive)
    out = tmp_path / "out"
    out.mkdir()

    done = subprocess.run(
        ["tar", "-xf", str(archive_path), "-C", str(out)], capture_output=True, check=True
    )
    listing = subprocess.run(
        ["tar", "--numeric-owner", "-tvf", str(archive_path)],
        capture_output=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )

    assert done.stderr == b"" and listing.stderr == b""
    ours = tmp_path / "ours"
    extract_submission(io.BytesIO(archive_path.read_bytes()), ours)
    assert tree(out) == tree(ours)
    for line in listing.stdout.decode().splitlines():
        assert line.startswith("-rw-r--r-- 0/0 ") and " 1970-01-01 00:00 " in line


def test_stock_age_and_tar_read_an_encrypted_submission(tmp_path: Path) -> None:
    identity = X25519Identity.generate()
    identity_path = tmp_path / "identity.txt"
    identity_path.write_text(str(identity) + "\n")
    sealed = tmp_path / "submission.age"
    sealed.write_bytes(encrypt_bytes(build_archive("тайна", ATTACHMENTS), [identity.recipient]))
    stock_out, ours_out = tmp_path / "stock", tmp_path / "ours"
    stock_out.mkdir()

    with spawned(["age", "-d", "-i", identity_path, sealed], stdout=subprocess.PIPE) as age:
        run(["tar", "-xf", "-", "-C", stock_out], stdin=age.stdout, check=True, timeout=60)
        assert age.wait(timeout=60) == 0
    with sealed.open("rb") as source:
        extract_submission(open_decrypted(source, [identity]), ours_out)

    assert tree(stock_out) == tree(ours_out)
    assert (ours_out / "message.txt").read_text("utf-8") == "тайна"


@pytest.mark.slow
def test_streaming_a_200_mib_attachment_uses_constant_memory() -> None:
    size, chunk = 200 * 1024 * 1024, os.urandom(64 * 1024)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        stream = SubmissionArchive(language="ru", sealed_by="server")
        digest.update(stream.message("big"))
        digest.update(stream.file_header("video.mp4", size))
        for _ in range(size // len(chunk)):
            digest.update(stream.file_data(chunk))
        digest.update(stream.file_end())
        for part in stream.finish():
            digest.update(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.length == padme_length(size + 3 * 1024 + 512 + 1024)
    assert peak < 1024 * 1024, f"peak {peak} bytes"


@pytest.mark.slow
def test_extracting_a_200_mib_attachment_uses_constant_memory(extraction: Extraction) -> None:
    size, chunk = 200 * 1024 * 1024, os.urandom(64 * 1024)

    def chunks() -> Iterator[bytes]:
        stream = SubmissionArchive(language="ru", sealed_by="browser")
        yield stream.message("big")
        yield stream.file_header("video.mp4", size)
        for _ in range(size // len(chunk)):
            yield stream.file_data(chunk)
        yield stream.file_end()
        yield from stream.finish()

    tracemalloc.start()
    try:
        result = extraction.run(LazyStream(chunks()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.files == [("video.mp4", size)]
    expected = hashlib.sha256(chunk * 16).digest()  # one MiB; the file repeats it
    with (extraction.dest / "files" / "video.mp4").open("rb") as extracted:
        while block := extracted.read(1024 * 1024):
            assert hashlib.sha256(block).digest() == expected
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


# --- names ------------------------------------------------------------------

WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"
}


def is_safe_name(name: str) -> bool:
    encoded = name.encode("utf-8")  # raises on surrogates
    return (
        0 < len(encoded) <= MAX_NAME_BYTES
        and not set(name) & set('/\\<>:"|?*')
        and not name.startswith((".", "-", " "))
        and not name.endswith((".", " "))
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name)
        and name.split(".")[0].rstrip(" ").upper() not in WINDOWS_DEVICES
        and unicodedata.is_normalized("NFC", name)
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("отчёт за 2024 год.pdf", "отчёт за 2024 год.pdf"),
        ("../x", "x"),
        ("../../etc/passwd", "passwd"),
        ("a/b", "b"),
        ("C:\\Users\\Иван\\doc.txt", "doc.txt"),
        ("..", ""),
        (".bashrc", "bashrc"),
        ("--rm -rf", "rm -rf"),
        ("  spaced name  .txt . ", "spaced name  .txt"),
        ('a<b>c:d"e|f?g*.txt', "a_b_c_d_e_f_g_.txt"),
        ("nul\x00byte\nline\ttab.txt", "nulbytelinetab.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),
        ("non\u00a0breaking", "non breaking"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Lpt1 .tar.gz", "_Lpt1 .tar.gz"),
        ("console.txt", "console.txt"),
        ("e\u0301", "\u00e9"),
        ("", ""),
    ],
)
def test_names_are_sanitised(raw: str, expected: str) -> None:
    assert sanitize_name(raw) == expected


def test_long_names_are_cut_at_a_character_boundary_keeping_the_extension() -> None:
    cut = sanitize_name("ж" * 300 + ".docx")
    assert cut.endswith(".docx") and cut.startswith("ж")
    assert len(cut.encode()) <= MAX_NAME_BYTES and len(cut.encode()) >= MAX_NAME_BYTES - 1
    assert len(sanitize_name("x" * 1000).encode()) == MAX_NAME_BYTES


def test_names_are_made_unique_ignoring_case_and_empty_ones_numbered() -> None:
    names = NameAllocator()
    allocated = [names.allocate(raw) for raw in ["a.txt", "A.TXT", "a.txt", "../", "", "a (2).txt"]]
    assert allocated == [
        "a.txt",
        "A (2).TXT",
        "a (3).txt",
        "attachment-4",
        "attachment-5",
        "a (2) (2).txt",
    ]


def names_that_all_clean_to(base: str, count: int) -> list[str]:
    """``count`` different raw names that all clean to ``base`` (leading dots, dashes, spaces)."""
    raws = []
    for number in range(count):
        prefix = ""
        while True:
            prefix += ".- "[number % 3]
            number //= 3
            if not number:
                break
        raws.append(prefix + base)
    assert len(set(raws)) == count
    return raws


def test_thousands_of_names_that_clean_to_one_are_numbered_in_linear_time() -> None:
    # A hostile archive may hold 10,000 such names; a search for a free
    # "a (N)" from N = 2 each time cost n² steps (about a minute at 10,000).
    raws = names_that_all_clean_to("a", 5000)
    names = NameAllocator()
    started = time.perf_counter()
    allocated = [names.allocate(raw) for raw in raws]
    elapsed = time.perf_counter() - started
    assert allocated == ["a"] + [f"a ({number})" for number in range(2, 5001)]
    assert elapsed < 2.0, f"5000 names took {elapsed:.1f} s"


@HYPOTHESIS
@given(st.text(max_size=400))
def test_any_name_sanitises_to_a_safe_name_and_stays_put(raw: str) -> None:
    name = sanitize_name(raw)
    assert name == "" or is_safe_name(name)
    assert sanitize_name(name) == name


@HYPOTHESIS
@given(st.lists(st.text(max_size=300), max_size=12))
def test_allocated_names_are_safe_and_unique_ignoring_case(raws: list[str]) -> None:
    names = NameAllocator()
    allocated = [names.allocate(raw) for raw in raws]
    assert all(is_safe_name(name) and sanitize_name(name) == name for name in allocated)
    assert len({name.casefold() for name in allocated}) == len(allocated)


@HYPOTHESIS
@given(
    st.text(max_size=200),
    st.lists(st.tuples(st.text(max_size=80), st.binary(max_size=1500)), max_size=5),
)
def test_any_submission_round_trips_without_warnings(
    message: str, attachments: list[tuple[str, bytes]]
) -> None:
    message = message.encode("utf-8", "replace").decode("utf-8")
    archive = build_archive(message, attachments, day=DAY)
    with tempfile.TemporaryDirectory() as scratch:
        result = extract_submission(io.BytesIO(archive), Path(scratch) / "out")
        assert result.warnings == []
        assert [size for _, size in result.files] == [len(data) for _, data in attachments]
        for (name, _), (_, data) in zip(result.files, attachments, strict=True):
            assert (Path(scratch) / "out" / "files" / name).read_bytes() == data
        assert (Path(scratch) / "out" / "message.txt").read_bytes() == message.encode()


# --- safe extraction --------------------------------------------------------


def test_reader_accepts_short_reads(extraction: Extraction) -> None:
    archive = build_archive("медленно", ATTACHMENTS, day=DAY)
    result = extraction.run(TrickleStream(archive, step=7))
    assert [size for _, size in result.files] == [len(data) for _, data in ATTACHMENTS]


def test_reader_sanitises_names_again_and_reports_changes(extraction: Extraction) -> None:
    archive = crafted_submission(
        member("files/CON", b"1"),
        member("files/.hidden", b"2"),
        member("files/invoice\u202etxt.exe", b"3"),
        member("files/report.pdf", b"4"),
        member("files/REPORT.pdf", b"5"),
        member("files/C:\\Windows\\win.ini", b"6"),
    )
    result = extraction.run(archive)

    assert result.files == [
        ("_CON", 1),
        ("hidden", 1),
        ("invoicetxt.exe", 1),
        ("report.pdf", 1),
        ("REPORT (2).pdf", 1),
        ("win.ini", 1),
    ]
    assert len(result.warnings) == 5
    assert "'invoice\\u202etxt.exe' saved as 'invoicetxt.exe'" in result.warnings[2]
    assert sorted(os.listdir(extraction.dest / "files")) == sorted(n for n, _ in result.files)


def test_message_that_is_not_utf8_is_kept_with_a_warning(extraction: Extraction) -> None:
    archive = crafted_tar(
        member("message.txt", b"caf\xe9"), member("submission.json", valid_meta())
    )
    result = extraction.run(archive)
    assert (extraction.dest / "message.txt").read_bytes() == b"caf\xe9"
    assert result.warnings == ["message.txt is not valid UTF-8; it was saved as it is."]


def test_archive_without_padding_is_read_with_a_warning(extraction: Extraction) -> None:
    archive = crafted_tar(
        member("message.txt", b"m" * 20_000), member("submission.json", valid_meta()), padded=False
    )
    assert padme_length(len(archive)) > len(archive)
    result = extraction.run(archive)
    assert result.warnings == ["The archive's padding is shorter than the format prescribes."]


def test_existing_destination_is_refused_and_left_alone(extraction: Extraction) -> None:
    extraction.dest.mkdir()
    (extraction.dest / "mine.txt").write_bytes(b"reviewer's own file")
    before = tree(extraction.root)
    with pytest.raises(ContainerError, match="already exists"):
        extraction.run(build_archive("m"))
    assert tree(extraction.root) == before


def test_destination_that_is_a_dangling_symlink_is_refused(extraction: Extraction) -> None:
    extraction.dest.symlink_to(extraction.outside / "target")
    with pytest.raises(ContainerError, match="already exists"):
        extraction.run(build_archive("m"))
    assert not (extraction.outside / "target").exists()


SMALL = build_archive("m", day=DAY)
HOSTILE = {
    "parent path": (crafted_submission(member("../escape.txt", b"x")), "'..'"),
    "parent inside files": (crafted_submission(member("files/../../escape.txt")), "'..'"),
    "backslash parent": (crafted_submission(member("..\\escape.txt")), "'..'"),
    "absolute path": (crafted_submission(member("/tmp/tiprelay-escape.txt", b"x")), "absolute"),
    "windows absolute": (crafted_submission(member("C:/escape.txt")), "absolute"),
    "symlink then file through it": (
        crafted_submission(
            member("files/link", kind=tarfile.SYMTYPE, linkname="/tmp"),
            member("files/link/escape.txt", b"x"),
        ),
        "symbolic link",
    ),
    "symlink to parent": (
        crafted_submission(member("files/up", kind=tarfile.SYMTYPE, linkname="..")),
        "symbolic link",
    ),
    "hard link": (
        crafted_submission(member("files/passwd", kind=tarfile.LNKTYPE, linkname="/etc/passwd")),
        "hard link",
    ),
    "character device": (
        crafted_submission(member("files/tty", kind=tarfile.CHRTYPE, devmajor=5, devminor=0)),
        "character device",
    ),
    "block device": (
        crafted_submission(member("files/sda", kind=tarfile.BLKTYPE, devmajor=8, devminor=0)),
        "block device",
    ),
    "fifo": (crafted_submission(member("files/pipe", kind=tarfile.FIFOTYPE)), "FIFO"),
    "directory": (crafted_submission(member("files/sub", kind=tarfile.DIRTYPE)), "directory"),
    "gnu long name": (
        crafted_submission(member("files/" + "l" * 150, b"x"), fmt=tarfile.GNU_FORMAT),
        "GNU long name",
    ),
    "duplicate attachment": (
        crafted_submission(member("files/a.txt", b"1"), member("files/a.txt", b"2")),
        "twice",
    ),
    "duplicate message": (crafted_submission(member("message.txt", b"again")), "twice"),
    "duplicate via ./": (crafted_submission(member("./message.txt", b"again")), "twice"),
    "entry outside the layout": (crafted_submission(member("run.sh", b"x")), "not part of"),
    "nested attachment": (crafted_submission(member("files/sub/x.txt", b"x")), "not part of"),
    "name too long": (crafted_submission(member("files/" + "n" * 2000, b"x")), "too long"),
    "non-utf8 name in pax": (
        crafted_submission(member("files/\udcff\udcfe.txt", b"x")),
        "not UTF-8",
    ),
    "non-utf8 name in ustar": (
        crafted_submission(member("files/\udcff.txt", b"x"), fmt=tarfile.USTAR_FORMAT),
        "not UTF-8",
    ),
    "missing submission.json": (crafted_tar(member("message.txt", b"m")), "submission.json is"),
    "missing message": (crafted_tar(member("submission.json", valid_meta())), "message.txt is"),
    "newer format": (
        crafted_tar(
            member("message.txt"),
            member("submission.json", b'{"format_version": 2}'),
        ),
        "format version '2'",
    ),
    "meta not json": (
        crafted_tar(member("message.txt"), member("submission.json", b"{nope")),
        "not valid JSON",
    ),
    "meta nested to the stack limit": (
        crafted_tar(member("message.txt"), member("submission.json", b"[" * 60_000)),
        "not valid JSON",
    ),
    "meta not an object": (
        crafted_tar(member("message.txt"), member("submission.json", b"[1]")),
        "not a JSON object",
    ),
    "non-zero padding": (SMALL[:-1] + b"\x01", "not padding"),
    "data after the padding": (SMALL + bytes(4096), "longer than"),
    "garbage": (os.urandom(4096), "Not a tar archive"),
    "text": (b"Hello, this is not a tar file at all.\n" * 40, "Not a tar archive"),
    "empty input": (b"", "empty"),
    "end marker cut short": (SMALL[: unpadded_length(SMALL) - 512], "end-of-archive marker"),
    "no end marker": (SMALL[: unpadded_length(SMALL) - 1024], "no end-of-archive marker"),
    "huge declared size, short data": (
        SMALL[:1024] + tarformat.file_header("files/big.bin", 3 * 10**9) + b"x" * 1000,
        "truncated",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archive_is_refused_and_nothing_is_written(
    extraction: Extraction, case: str
) -> None:
    archive, message = HOSTILE[case]
    extraction.assert_refused(archive, message)
    assert not Path("/tmp/tiprelay-escape.txt").exists()


def test_truncated_archive_is_refused_at_every_cut(extraction: Extraction) -> None:
    archive = build_archive("сообщение", [("a.bin", os.urandom(3000))], day=DAY)
    for cut in range(1, unpadded_length(archive) - 512, 97):
        extraction.assert_refused(archive[:cut], "truncated|Not a tar archive")


def test_bad_header_checksum_is_refused(extraction: Extraction) -> None:
    archive = bytearray(build_archive("m", day=DAY))
    archive[0] ^= 0x01
    extraction.assert_refused(bytes(archive), "bad header checksum at byte 0")


def test_declared_size_above_the_limit_is_refused_before_reading(
    extraction: Extraction,
) -> None:
    archive = crafted_submission(
        member("files/a.bin", b"x" * 600), member("files/b.bin", b"y" * 600)
    )
    limits = ExtractLimits(max_total_bytes=1000)
    extraction.assert_refused(archive, "more than 1000 bytes", limits, ArchiveTooLargeError)
    with pytest.raises(LimitExceededError):
        extract_submission(io.BytesIO(archive), extraction.work / "again", limits)


def test_archive_with_100k_entries_stops_at_the_entry_limit(extraction: Extraction) -> None:
    consumed = 0

    def entries() -> Iterator[bytes]:
        nonlocal consumed
        yield tarformat.file_header("message.txt", 0)
        for number in range(100_000):
            consumed = number
            yield tarformat.file_header(f"files/{number}.txt", 0)

    extraction.assert_refused(
        LazyStream(entries()), "more than 10000 entries", error=ArchiveTooLargeError
    )
    assert consumed < 10_001


def test_oversized_pax_header_is_refused(extraction: Extraction) -> None:
    archive = crafted_submission(member("files/a.txt", b"x", pax_headers={"comment": "c" * 70_000}))
    extraction.assert_refused(archive, "pax header", error=ArchiveTooLargeError)


def test_sparse_and_binary_charset_pax_headers_are_refused(extraction: Extraction) -> None:
    sparse = crafted_submission(member("files/s", b"x", pax_headers={"GNU.sparse.size": "9"}))
    extraction.assert_refused(sparse, "sparse")
    pax = tarformat.pax_record("hdrcharset", "BINARY") + tarformat.pax_record("path", "files/a")
    binary = (
        tarformat.file_header("message.txt", 0)
        + tarformat.header_block(b"././@PaxHeader", len(pax), tarformat.PAX_HEADER)
        + pax
        + tarformat.padding_after(len(pax))
        + tarformat.file_header("files/a", 0)
        + tarformat.END_OF_ARCHIVE
    )
    extraction.assert_refused(binary, "not UTF-8")


def test_two_pax_headers_in_a_row_are_refused(extraction: Extraction) -> None:
    pax_entry = tarformat.file_header("files/имя", 0)[:1024]  # the pax header and its records
    archive = tarformat.file_header("message.txt", 0) + pax_entry + pax_entry + bytes(2048)
    extraction.assert_refused(archive, "two pax headers")


# --- property tests: hostile bytes only ever give ContainerError ---------------

VALID = build_archive("текст", [("файл.txt", b"data" * 100), ("b.bin", b"")], day=DAY)


def extract_or_refuse(archive: bytes) -> None:
    """Extraction either succeeds inside its folder or raises ContainerError."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "work").mkdir()
        try:
            result = extract_submission(
                io.BytesIO(archive), root / "work" / "out", ExtractLimits(max_total_bytes=10**6)
            )
        except ContainerError:
            assert os.listdir(root / "work") == []
            return
        assert os.listdir(root / "work") == ["out"]
        for name, _ in result.files:
            assert is_safe_name(name)
        allowed = {"message.txt", "submission.json", "files"}
        assert set(os.listdir(root / "work" / "out")) <= allowed


@HYPOTHESIS
@given(st.binary(max_size=3000))
def test_random_bytes_only_ever_raise_container_error(garbage: bytes) -> None:
    extract_or_refuse(garbage)


@HYPOTHESIS
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    st.integers(0, len(VALID)),
)
def test_mutated_archives_only_ever_raise_container_error(
    flips: list[tuple[int, int]], cut: int
) -> None:
    archive = bytearray(VALID[: max(cut, 1)])
    for position, value in flips:
        if position < len(archive):
            archive[position] = value
    extract_or_refuse(bytes(archive))


@HYPOTHESIS
@given(
    st.binary(min_size=512, max_size=512),
    st.sampled_from([b"0", b"x", b"\0", b"5", b"2", b"g", b"L", b"7"]),
    st.binary(max_size=1024),
)
def test_random_headers_with_valid_checksums_only_ever_raise_container_error(
    raw: bytes, typeflag: bytes, tail: bytes
) -> None:
    block = bytearray(raw)
    block[156:157] = typeflag
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    extract_or_refuse(tarformat.file_header("message.txt", 0) + bytes(block) + tail)
