"""Keep plaintext and keys out of core files: ``disable_core_dumps`` for serve and decrypt.

``tiprelay serve`` holds no-JS plaintext in memory while it seals it, and
``tiprelay decrypt`` holds identities and plaintext. A crash of either would
otherwise write that memory to a core file (or hand it to a crash collector
such as systemd-coredump or apport), where it outlives the process. Two locks,
because each closes a different door:

- ``RLIMIT_CORE`` 0 (soft and hard): no core file is written by the kernel.
- ``PR_SET_DUMPABLE`` 0: no core at all, even to a piped ``core_pattern``
  handler (which ignores RLIMIT_CORE), and no ptrace attach by other
  processes of the same user.

Both are read back after setting them: a silent failure would be worse than none.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

from relay.errors import TiprelayError

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4


class CoreDumpError(TiprelayError):
    """Core dumps could not be turned off for this process."""


def disable_core_dumps() -> list[str]:
    """Turn core dumps off for this process; return warnings for what this platform lacks.

    Raises CoreDumpError when a switch that exists here does not take.
    """
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        raise CoreDumpError(f"Could not set the core file size limit to 0 ({exc}).") from None
    if resource.getrlimit(resource.RLIMIT_CORE) != (0, 0):
        raise CoreDumpError("The core file size limit did not stay at 0.")
    if not sys.platform.startswith("linux"):
        return [
            "This is not Linux: the process could not be marked non-dumpable "
            "(PR_SET_DUMPABLE). Core files are off, but a crash collector or a "
            "debugger of the same user may still read its memory."
        ]
    _prctl(_PR_SET_DUMPABLE, 0)
    if _prctl(_PR_GET_DUMPABLE, 0) != 0:
        raise CoreDumpError("The process is still dumpable after PR_SET_DUMPABLE 0.")
    return []


def _prctl(option: int, argument: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result: int = libc.prctl(
        ctypes.c_int(option), ctypes.c_ulong(argument), ctypes.c_ulong(0),
        ctypes.c_ulong(0), ctypes.c_ulong(0),
    )
    if result < 0:
        errno = ctypes.get_errno()
        raise CoreDumpError(f"prctl({option}) failed: {os.strerror(errno)}.")
    return result
