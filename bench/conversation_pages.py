"""Latency of the no-JavaScript "read replies" page, and the form page's weight.

Starts a real ``tiprelay serve`` on 127.0.0.1 (tests/support_server.py) with a
conversation salt, fills ``--replies`` slots of one conversation's ring with
genuine replies of ``--size`` bytes each (through the signed reviewer API), and
times ``POST /replies`` (derive + read + decrypt + check + render), median of
``--rounds``, and prints the page's size (``--replies 0`` and ``1`` give the same:
it is padded). Then prints the size of ``GET /`` and of the browser bundle.

    .venv/bin/python bench/conversation_pages.py [--replies 16] [--size 1048576] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from relay.conversation.codename import generate_codename  # noqa: E402
from relay.conversation.derivation import derive_conversation_keys  # noqa: E402
from relay.conversation_salt import ensure_conversation_salt  # noqa: E402
from relay.crypto.signing import SigningKey  # noqa: E402
from tests.support_conversation import put_reply, sealed_reply  # noqa: E402
from tests.support_reviewer import send  # noqa: E402
from tests.support_server import new_relay  # noqa: E402

BUNDLE = ROOT / "relay" / "web" / "static" / "dist" / "app.js"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024 * 1024, help="bytes of each reply's file")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory() as folder:
        relay = new_relay(
            Path(folder) / "relay",
            {"reply_ring_size": max(16, args.replies), "max_reply_bytes": 2 * args.size + 65536},
            api_key_text=key.public_key_text,
        )
        salt, _ = ensure_conversation_salt(relay.keys_dir)
        relay.start()
        try:
            codename = generate_codename()
            keys = derive_conversation_keys(codename, salt)
            for n in range(1, args.replies + 1):
                reply = sealed_reply(
                    relay, keys, n, f"reply {n}", [("file.bin", os.urandom(args.size))]
                )
                put_reply(relay, key, keys, n % max(16, args.replies), reply)
            body = urllib.parse.urlencode({"codename": str(codename)}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            timings = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                answer = send(relay.url, "POST", "/replies?lang=en", headers, body)
                timings.append(time.perf_counter() - started)
                assert answer.status == 200 and (args.replies == 0 or b"reply 1" in answer.body)
            form = send(relay.url, "GET", "/?lang=en").body
        finally:
            relay.stop()
    print(
        f"no-JS reply page, {args.replies} replies of {args.size} B: "
        f"median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms over {args.rounds} rounds; "
        f"{len(answer.body)} B (padded: relay/server/page_padding.py)"
    )
    print(f"GET / : {len(form)} B ({len(gzip.compress(form, 9))} B gzip)")
    if BUNDLE.is_file():
        bundle = BUNDLE.read_bytes()
        print(f"bundle dist/app.js : {len(bundle)} B ({len(gzip.compress(bundle, 9))} B gzip)")


if __name__ == "__main__":
    main()
