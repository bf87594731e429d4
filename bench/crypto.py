"""Encrypt and decrypt throughput of `tiprelay` against stock `age`, same run.

Whole processes, as a reviewer would run them: start-up included. Prints MB/s
for each tool, the ratio (tiprelay / age; >= 1.0 means at least as fast) and
each process's peak RSS.

    .venv/bin/python bench/crypto.py            # 256 MiB
    .venv/bin/python bench/crypto.py --gib 1    # 1 GiB
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIPRELAY = str(Path(sys.executable).with_name("tiprelay"))


def run(argv: list[str], output: Path) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one process, from a settled page cache.

    Dirty pages left by the previous run (a whole GiB of them) would otherwise
    be written back during this one and throttle it, whichever tool it is.
    """
    output.unlink(missing_ok=True)
    os.sync()
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{argv[0]} failed with status {status}")
    return elapsed, usage.ru_maxrss


def compare(
    name: str, stock: list[str], ours: list[str], output: Path, size: int, repeats: int
) -> tuple[float, int]:
    """Run both tools alternately (so neither always goes first); print and return."""
    times: dict[str, list[float]] = {"stock": [], "ours": []}
    rss = {"stock": 0, "ours": 0}
    for _ in range(repeats):
        for key, argv in (("stock", stock), ("ours", ours)):
            elapsed, peak = run(argv, output)
            times[key].append(elapsed)
            rss[key] = max(rss[key], peak)
    print(f"{name}:")
    for key, label in (("stock", " ".join(stock[:2])), ("ours", " ".join(["tiprelay", ours[1]]))):
        best, median = min(times[key]), statistics.median(times[key])
        print(f"  {label:<18} {size / best / 1e6:8.1f} MB/s best, {size / median / 1e6:8.1f} "
              f"median of {repeats}; peak RSS {rss[key] / 1024:6.1f} MiB")
    ratio_best = min(times["stock"]) / min(times["ours"])
    ratio_median = statistics.median(times["stock"]) / statistics.median(times["ours"])
    print(f"  ratio (tiprelay/age throughput): {ratio_best:.2f}x best, {ratio_median:.2f}x median")
    return ratio_median, rss["ours"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=0.25, help="file size in GiB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("age"):
        raise SystemExit("stock age is needed (apt-get install age)")
    size = int(args.gib * (1 << 30))
    bench_dir = os.environ.get("BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-", dir=bench_dir) as tmp:
        d = Path(tmp)
        plain = d / "plain"
        with open(plain, "wb") as handle:
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                handle.write(block)
            handle.write(block[: size & ((1 << 20) - 1)])
        identity = d / "identity.txt"
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                                   capture_output=True, text=True).stdout.strip()
        ours, theirs = d / "ours.age", d / "theirs.age"
        print(f"file size {size / (1 << 20):.0f} MiB, {os.cpu_count()} CPUs; "
              "each run starts after sync, tools alternate")
        subprocess.run(["age", "-r", recipient, "-o", str(theirs), str(plain)], check=True)
        _, rss_enc = compare(
            "encrypt",
            ["age", "-r", recipient, "-o", str(ours), str(plain)],
            [TIPRELAY, "encrypt", "-r", recipient, "-o", str(ours), str(plain)],
            ours, size, args.repeats,
        )
        out = d / "out"
        _, rss_dec = compare(
            "decrypt",
            ["age", "-d", "-i", str(identity), "-o", str(out), str(theirs)],
            [TIPRELAY, "decrypt", "-i", str(identity), "-o", str(out), str(theirs)],
            out, size, args.repeats,
        )
        run([TIPRELAY, "decrypt", "-i", str(identity), "-o", str(out), str(theirs)], d / "x")
        if out.read_bytes() != plain.read_bytes():
            raise SystemExit("decrypted output differs from the input")
        print(f"peak RSS of tiprelay: encrypt {rss_enc / 1024:.1f} MiB, decrypt "
              f"{rss_dec / 1024:.1f} MiB (target < 64 MiB, whatever the size)")


if __name__ == "__main__":
    main()
