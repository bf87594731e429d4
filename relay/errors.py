"""tiprelay's error tree. Each docstring is the message the person sees.

``TiprelayError`` is the root of everything outside ``relay.crypto``; the
crypto package keeps its own root (``AgeError``) because it imports nothing
from the rest of relay. ``USER_ERRORS`` names both, for the places (CLI, HTTP
error pages) that turn an error into a message for a person.
"""

from __future__ import annotations

from relay.crypto.errors import AgeError


class TiprelayError(Exception):
    """tiprelay could not complete the operation."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(TiprelayError):
    """The configuration is invalid."""


class KeyringError(TiprelayError):
    """The reviewer keys are missing or invalid."""


class ContainerError(TiprelayError):
    """The submission archive is malformed or unsafe to extract."""


class LimitExceededError(TiprelayError):
    """The input is larger than allowed."""


class StorageError(TiprelayError):
    """The submission could not be stored."""


class StorageFullError(StorageError):
    """The relay's disk is full: nothing was stored, and what was stored before is kept."""


class ArchiveTooLargeError(ContainerError, LimitExceededError):
    """The submission archive has more entries or bytes than extraction allows."""


class UploadNotFoundError(StorageError):
    """This upload does not exist or has expired; start the upload again."""


class UploadOffsetError(StorageError):
    """The upload offset does not match what the relay has stored; resume from its offset."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        super().__init__(
            f"The upload offset does not match; the relay has {expected} bytes, resume from there."
        )


class ReplySlotChangedError(StorageError):
    """The reply slot no longer holds what the reply expected: pull, then reply again."""

    def __init__(self) -> None:
        super().__init__(
            "The reply slot changed since your last pull (another reply was pushed to it, "
            "or it was deleted): pull, then reply again."
        )


USER_ERRORS: tuple[type[Exception], ...] = (TiprelayError, AgeError)
