"""Cost of deriving a conversation's keys from a codename (kdf v1, PBKDF2 2**18).

Python (hashlib's C PBKDF2, what the no-JS server path runs behind its
semaphore) and Node (WebCrypto's native PBKDF2, what the browser code runs),
each the median of a few rounds on this machine:

    .venv/bin/python bench/conversation_kdf.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relay.conversation.codename import generate_codename
from relay.conversation.derivation import derive_conversation_keys

ROOT = Path(__file__).resolve().parent.parent
NODE = Path(sys.executable).with_name("node")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    python = []
    for _ in range(rounds):
        start = time.perf_counter()
        derive_conversation_keys(generate_codename(), bytes(32))
        python.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.json"
        vectors = ROOT / "tests" / "vectors" / "conversation.json"
        spec.write_text(json.dumps({"vectors": str(vectors), "bench": rounds}))
        result = subprocess.run(
            [str(NODE), str(ROOT / "tests" / "js" / "conversation.mjs"), str(spec)],
            check=True, capture_output=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
    node = json.loads(result.stdout)["bench_seconds"]
    print(f"derivation (PBKDF2-SHA-256 2^18 + 5 x HKDF), median of {rounds}:")
    print(f"  python (hashlib)      {statistics.median(python) * 1000:7.1f} ms")
    print(f"  node (WebCrypto)      {statistics.median(node) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
