"""Unwrapping: which identity opens which stanza of a header.

An identity is anything with ``unwrap(stanza) -> bytes | None``: age's own
(relay.crypto.identities), or a reviewer's gpg (relay.crypto.openpgp_identity).
It returns None for "this stanza is not for me", the expected outcome for
other people's stanzas; every other problem raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from . import primitives
from .errors import HeaderError, NoIdentityMatchError, WrongPassphraseError
from .format import Stanza
from .identities import ScryptIdentity


class Identity(Protocol):
    """Anything that can try to unwrap a file key from one stanza."""

    def unwrap(self, stanza: Stanza) -> bytes | None: ...



def unwrap_file_key(stanzas: Sequence[Stanza], identities: Sequence[Identity]) -> bytes:
    """The file key from the first stanza any identity opens.

    As the spec requires, stanzas of unknown types are skipped; a malformed
    stanza of a known type is fatal.
    """
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise HeaderError("A passphrase (scrypt) stanza must be the only one in the header.")
    passphrase_only = bool(identities) and all(isinstance(i, ScryptIdentity) for i in identities)
    for identity in identities:
        for stanza in stanzas:
            file_key = identity.unwrap(stanza)
            if file_key is None:
                continue
            if len(file_key) != primitives.FILE_KEY_SIZE:  # unreachable: body size checked
                raise HeaderError("The wrapped file key has the wrong size.")
            return file_key
    if passphrase_only and any(s.type == "scrypt" for s in stanzas):
        raise WrongPassphraseError
    if passphrase_only:
        raise NoIdentityMatchError("This file is not encrypted to a passphrase.")
    for identity in identities:
        explain = getattr(identity, "explain_no_match", None)
        if explain is not None:
            raise NoIdentityMatchError(explain(stanzas))
    if any(s.type == "scrypt" for s in stanzas):
        raise NoIdentityMatchError("This file is encrypted to a passphrase, not to an identity.")
    raise NoIdentityMatchError


__all__ = ["Identity", "unwrap_file_key"]
