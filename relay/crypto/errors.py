"""The errors relay.crypto raises. Each docstring is what the person sees.

Decryption failures are deliberately coarse for an attacker (no timing or
content oracle: every MAC failure is the same failure), yet precise enough for
a reviewer to know what to do.
"""

from __future__ import annotations


class AgeError(Exception):
    """The age operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class HeaderError(AgeError):
    """The age header is malformed."""


class NotAnAgeFileError(HeaderError):
    """This is not an age file (it does not start with the age v1 header)."""


class HeaderMacError(AgeError):
    """The age header has been altered or damaged (its MAC does not match)."""


class NoIdentityMatchError(AgeError):
    """This file is not encrypted to this identity."""


class WrongPassphraseError(NoIdentityMatchError):
    """Wrong passphrase."""


class PayloadError(AgeError):
    """The file is damaged or truncated."""

    def __init__(self, message: str | None = None, *, chunk: int | None = None) -> None:
        self.chunk = chunk
        if message is None and chunk is not None:
            message = f"The file is damaged or truncated (chunk {chunk})."
        super().__init__(message)


class ArmorError(AgeError):
    """The ASCII armor is malformed."""


class KeyFormatError(AgeError):
    """The key is malformed."""


class WorkFactorTooHighError(HeaderError):
    """The passphrase work factor is higher than this tool accepts."""
