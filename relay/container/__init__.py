"""The plaintext of a submission: a padded ustar/pax tar (its layout: ``writer``).

``writer`` builds one as a stream, ``reader`` extracts one safely, ``names``
holds the attachment-name rules both share, ``tarformat`` the header bytes.
"""

from relay.container.names import NameAllocator, sanitize_name
from relay.container.reader import ExtractedSubmission, ExtractLimits, extract_submission
from relay.container.writer import (
    FORMAT_VERSION,
    SubmissionArchive,
    build_archive,
    submission_meta,
)

__all__ = [
    "FORMAT_VERSION",
    "ExtractLimits",
    "ExtractedSubmission",
    "NameAllocator",
    "SubmissionArchive",
    "build_archive",
    "extract_submission",
    "sanitize_name",
    "submission_meta",
]
