"""The recipient-set fingerprint a source compares before sending.

The page shows it (and ``GET /api/v1/recipients`` returns it) so that a source
can check it against the one the organisation publishes elsewhere: a seized or
impostor server that swapped in its own key would show a different one.

Definition (the same in ``relay/web/js/fingerprint.js``): take the set of
recipient strings (``age1…`` for an age reviewer, ``openpgp:<FINGERPRINT>``
with the 40 upper-case hex digits of an OpenPGP reviewer's key), drop
duplicates, sort them by their bytes, join them with ``"\\n"`` (no trailing
newline), hash with SHA-256, keep the first 10 bytes (80 bits) and write them
as 20 lower-case hex digits in 5 groups of 4, separated by spaces. The shell
equivalent, for operators::

    printf '%s\\n' age1... openpgp:0123...CDEF | LC_ALL=C sort -u | head -c -1 |
        sha256sum | cut -c1-20
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

FINGERPRINT_BYTES = 10
GROUP_LENGTH = 4


def recipient_set_fingerprint(recipients: Iterable[str]) -> str:
    """The short, human-comparable fingerprint of a set of recipients."""
    unique = sorted({str(recipient) for recipient in recipients}, key=lambda r: r.encode())
    if not unique:
        raise ValueError("a fingerprint needs at least one recipient")
    digest = hashlib.sha256("\n".join(unique).encode("utf-8")).digest()
    hex_digits = digest[:FINGERPRINT_BYTES].hex()
    groups = [hex_digits[i : i + GROUP_LENGTH] for i in range(0, len(hex_digits), GROUP_LENGTH)]
    return " ".join(groups)
