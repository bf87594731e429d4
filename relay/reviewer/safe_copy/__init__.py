"""Safe copies of hostile documents: pixels made in a sandbox, a plain PDF made outside.

An attachment may be built to exploit the viewer on the reviewer's offline
machine, the one that holds every key. So it is never opened there as it came:

- ``sandbox``: the bubblewrap command line, its seccomp filter and resource
  limits, and running one command in it with a wall-clock deadline;
- ``convert``: Dangerzone's own document-to-pixels converter
  (``dangerzone-insecure-conversion``) run inside that sandbox;
- ``pixels``: the strict, bounded reader of the pixel stream it writes;
- ``pdf``: the PDF built outside from those pixels only (PyMuPDF), with an
  optional OCR text layer (Tesseract, also run in the sandbox);
- ``check``: whether all of that works on this machine;
- ``folders``: safe copies of every attachment of decrypted tips.
"""

from relay.reviewer.safe_copy.convert import SafeCopyError, SafeCopyResult, make_safe_copy
from relay.reviewer.safe_copy.sandbox import Limits

__all__ = ["Limits", "SafeCopyError", "SafeCopyResult", "make_safe_copy"]
