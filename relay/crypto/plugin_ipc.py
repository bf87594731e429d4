"""The age plugin protocol's wire: stanzas over a pipe, read within fixed bounds.

C2SP age-plugin: the client (stock ``age``) and a plugin exchange stanzas
written exactly as in an age v1 header (``-> COMMAND ARGS...`` then base64 body
lines of 64 columns, the last one shorter). The client forwards every stanza of
the file's header to the plugin, so what arrives here is as hostile as the file:
every line, every body, the number of stanzas and the bytes of a whole session
are capped, and anything past a cap is refused rather than buffered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from .errors import AgeError
from .format import COLUMNS, MAX_HEADER_SIZE, MAX_LINE_LENGTH, MAX_STANZAS, Stanza, b64decode
from .format import encode_stanza as _encode_stanza

STANZA_PREFIX = b"-> "
# A plugin stanza's body: ours hold at most a 4 KiB OpenPGP message; another
# plugin's stanza that we only read to skip may be larger, but not unboundedly.
MAX_BODY_BYTES = 64 * 1024
# Everything the client may send in one session: a header's worth, and room for
# the short answers of phase 2.
MAX_SESSION_BYTES = MAX_HEADER_SIZE + 64 * 1024
MAX_PHASE_STANZAS = MAX_STANZAS + 64


class PluginProtocolError(AgeError):
    """The age client sent something the plugin protocol does not allow."""


class ClientGoneError(PluginProtocolError):
    """The age client closed the connection."""


class StanzaChannel:
    """Stanzas read from and written to an age client, one at a time."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._consumed = 0

    def _line(self) -> bytes:
        line = self._reader.readline(MAX_LINE_LENGTH + 1)
        self._consumed += len(line)
        if not line:
            raise ClientGoneError
        if self._consumed > MAX_SESSION_BYTES:
            raise PluginProtocolError("The age client sent more than the plugin accepts.")
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE_LENGTH:
                raise PluginProtocolError("The age client sent a line that is too long.")
            raise ClientGoneError("The age client closed the connection mid-stanza.")
        return line[:-1]

    def read(self) -> Stanza:
        """The next stanza; PluginProtocolError if malformed or over a bound."""
        first = self._line()
        if not first.startswith(STANZA_PREFIX):
            raise PluginProtocolError("The age client sent a line that starts no stanza.")
        try:
            words = first[len(STANZA_PREFIX) :].decode("ascii").split(" ")
        except UnicodeDecodeError:
            raise PluginProtocolError("The age client sent a non-ASCII stanza.") from None
        if not all(word and all(0x21 <= ord(c) <= 0x7E for c in word) for word in words):
            raise PluginProtocolError("The age client sent a stanza with an invalid argument.")
        body = bytearray()
        while True:
            chunk = self._line()
            if len(chunk) > COLUMNS:
                raise PluginProtocolError("The age client sent an over-long body line.")
            try:
                body += b64decode(chunk)
            except AgeError:
                raise PluginProtocolError(
                    "The age client sent a body that is not base64."
                ) from None
            if len(body) > MAX_BODY_BYTES:
                raise PluginProtocolError("The age client sent a stanza body that is too large.")
            if len(chunk) < COLUMNS:
                return Stanza(words[0], tuple(words[1:]), bytes(body))

    def read_phase(self) -> list[Stanza]:
        """Every stanza up to the ``done`` that ends a client's phase (``done`` left out)."""
        stanzas: list[Stanza] = []
        while True:
            stanza = self.read()
            if stanza.type == "done":
                return stanzas
            if len(stanzas) >= MAX_PHASE_STANZAS:
                raise PluginProtocolError("The age client sent too many stanzas.")
            stanzas.append(stanza)

    def send(self, command: str, args: Sequence[str] = (), body: bytes = b"") -> None:
        """Write one stanza and flush it."""
        self._writer.write(_encode_stanza(Stanza(command, tuple(args), body)))
        self._writer.flush()

    def ask(self, command: str, args: Sequence[str] = (), body: bytes = b"") -> Stanza:
        """Send a phase-2 command and read the client's answer (``ok``, ``fail``...)."""
        self.send(command, args, body)
        return self.read()


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PHASE_STANZAS",
    "MAX_SESSION_BYTES",
    "ClientGoneError",
    "PluginProtocolError",
    "StanzaChannel",
]
