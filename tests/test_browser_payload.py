"""The browser's age payload layer (relay/web/js/stream_payload.js) against CCTV.

The page seals the age payload's 64 KiB chunks in Web Workers, in runs, with its
own small STREAM module (typage seals a file only in one piece). Every C2SP CCTV
vector that succeeds and names its file key is re-sealed by that module, whole
and in runs of three chunks joined, and must equal the vector's payload byte for
byte: the chunk counter across 256 and 257 chunks, a full final chunk, and the
empty payload included.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support_node import NODE

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / "tests" / "js" / "stream_payload_vectors.mjs"
STREAM_EDGES = {
    "stream_empty_payload",
    "stream_two_chunks",
    "stream_three_chunks",
    "stream_last_chunk_full",
    "stream_last_chunk_full_second",
    "stream_257_chunks",
    "stream_257_chunks_full",
    "stream_258_chunks",
}


def test_the_browser_payload_layer_reseals_every_cctv_payload_byte_for_byte() -> None:
    out = subprocess.run(
        [str(NODE), str(HELPER)], cwd=ROOT, capture_output=True, check=True, timeout=120
    ).stdout
    result = json.loads(out)
    assert result["mismatched"] == []
    assert set(result["checked"]) >= STREAM_EDGES
    assert len(result["checked"]) == 19  # a change in the vector set is noticed
    assert set(result["skipped"].values()) == {"armored"}
