"""The few pieces of POSIX tar (ustar + pax) that submissions use, both ways.

A header is one 512-byte block (POSIX.1-1988 ustar layout). Its fields, as
tiprelay writes them (octal numbers are ASCII, NUL-terminated):

    offset size  field      value
         0  100  name       the path, or an ASCII stand-in when a pax path is given
       100    8  mode       "0000644\\0"
       108    8  uid, gid   "0000000\\0" each
       124   12  size       11 octal digits + NUL
       136   12  mtime      "00000000000\\0"
       148    8  chksum     6 octal digits, NUL, space: the byte sum of the block
                            with this field counted as 8 spaces
       156    1  typeflag   "0" regular file, "x" pax header for the next entry
       157  100  linkname   NUL
       257    8  magic      "ustar\\0" "00"
       265   64  uname,gname NUL (no owner names)
       329   16  devmajor,devminor NUL (as python's tarfile writes them for files)
       345  155  prefix     NUL (never used; long names go to pax instead)
       500   12  (padding)  NUL

A pax header (typeflag "x", name "././@PaxHeader") carries records
``"<len> <key>=<value>\\n"`` where <len> counts the whole record in decimal.
"""

from __future__ import annotations

from relay.digits import parse_ascii_decimal
from relay.errors import ContainerError

BLOCK_SIZE = 512
ZERO_BLOCK = bytes(BLOCK_SIZE)
END_OF_ARCHIVE = bytes(2 * BLOCK_SIZE)
PAX_HEADER_NAME = "././@PaxHeader"

REGULAR_FILE = b"0"
REGULAR_FILE_OLD = b"\0"
PAX_HEADER = b"x"

_NAME_FIELD_BYTES = 100
_MAX_OCTAL_SIZE = 8**11 - 1  # what fits in the 11 digits of the size field
_CHECKSUM = slice(148, 156)
_POSIX_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"


def padding_after(length: int) -> bytes:
    """The zeros that fill the last block of an entry's data."""
    return bytes(-length % BLOCK_SIZE)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def header_block(name: bytes, size: int, typeflag: bytes) -> bytes:
    """One header block as laid out above (mode 0644, owner 0, mtime 0)."""
    block = bytearray(BLOCK_SIZE)
    block[0 : len(name)] = name
    block[100:108] = _octal(0o644, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(0, 12)
    block[_CHECKSUM] = b" " * 8
    block[156:157] = typeflag
    block[257:265] = _POSIX_MAGIC
    block[_CHECKSUM] = b"%06o\x00 " % sum(block)
    return bytes(block)


def _ascii_stand_in(path: str) -> bytes:
    """What pax-unaware readers see: non-ASCII as ``_``, cut to the name field."""
    ascii_path = "".join(char if " " <= char <= "~" else "_" for char in path)
    return ascii_path.encode("ascii")[:_NAME_FIELD_BYTES]


def pax_record(key: str, value: str) -> bytes:
    """One ``"<len> key=value\\n"`` record; <len> includes its own digits."""
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length = len(body) + len(str(length))  # one more digit if adding digits crossed a power of 10
    return str(length).encode("ascii") + body


def file_header(path: str, size: int) -> bytes:
    """Header block(s) for a regular file: a pax header first when ustar cannot hold it."""
    if size < 0:
        raise ValueError("size must not be negative")
    encoded = path.encode("utf-8")
    records = b""
    if not path.isascii() or len(encoded) > _NAME_FIELD_BYTES:
        records += pax_record("path", path)
    if size > _MAX_OCTAL_SIZE:
        records += pax_record("size", str(size))
    header = header_block(_ascii_stand_in(path), min(size, _MAX_OCTAL_SIZE), REGULAR_FILE)
    if not records:
        return header
    pax = header_block(PAX_HEADER_NAME.encode("ascii"), len(records), PAX_HEADER)
    return pax + records + padding_after(len(records)) + header


# --- reading ---------------------------------------------------------------


def _cut_at_nul(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def parse_number(field: bytes, what: str) -> int:
    """An octal header number, or GNU base-256 for big positive values."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    if field[:1] and field[0] & 0x80:
        raise ContainerError(f"The archive is damaged: negative {what} in a header.")
    digits = _cut_at_nul(field).strip(b" ")
    if not digits:
        return 0
    if digits.strip(b"01234567"):
        raise ContainerError(f"The archive is damaged: {what} in a header is not a number.")
    return int(digits, 8)


class RawHeader:
    """The fields of one header block that the reader looks at."""

    def __init__(self, block: bytes, offset: int) -> None:
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        signed = unsigned - 256 * sum(1 for byte in block if byte >= 128)  # old tars
        checksum = _cut_at_nul(block[_CHECKSUM]).strip(b" ")
        if (
            not checksum
            or checksum.strip(b"01234567")
            or int(checksum, 8) not in (unsigned, signed)
        ):
            raise ContainerError(
                f"Not a tar archive, or damaged: bad header checksum at byte {offset}."
            )
        magic = block[257:265]
        if magic != _POSIX_MAGIC and magic != _GNU_MAGIC:
            raise ContainerError(f"Not a ustar/pax tar archive (header at byte {offset}).")
        self.typeflag = block[156:157]
        self.size = parse_number(block[124:136], "size")
        name = _cut_at_nul(block[0:100])
        prefix = _cut_at_nul(block[345:500]) if magic == _POSIX_MAGIC else b""
        self.name = prefix + b"/" + name if prefix else name


def parse_pax_records(data: bytes) -> dict[str, bytes]:
    """The records of a pax header, strictly: malformed records are refused."""
    records: dict[str, bytes] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:  # NUL fill after the last record, and nothing else
            if data.count(0, position) != len(data) - position:
                raise ContainerError("The archive is damaged: a malformed pax header record.")
            break
        space = data.find(b" ", position, position + 20)
        length_digits = data[position:space] if space > 0 else b""
        length = parse_ascii_decimal(length_digits, max_digits=20)
        if length is None:
            raise ContainerError("The archive is damaged: a malformed pax header record.")
        end = position + length
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise ContainerError("The archive is damaged: a malformed pax header record.")
        key, _, value = record[:-1].partition(b"=")
        try:
            records[key.decode("utf-8")] = value
        except UnicodeDecodeError:
            raise ContainerError("The archive is damaged: a pax key is not UTF-8.") from None
        position = end
    return records
