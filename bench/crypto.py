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


def run(argv: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{argv[0]} failed with status {status}")
    return elapsed, usage.ru_maxrss


def measure(label: str, argv: list[str], size: int, repeats: int) -> tuple[float, int]:
    times, rss = [], 0
    for _ in range(repeats):
        elapsed, peak = run(argv)
        times.append(elapsed)
        rss = max(rss, peak)
    best = min(times)
    print(f"  {label:<22} {size / best / 1e6:8.1f} MB/s  (best of {repeats}, median "
          f"{size / statistics.median(times) / 1e6:.1f})  peak RSS {rss / 1024:6.1f} MiB")
    return best, rss


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
        print(f"file size {size / (1 << 20):.0f} MiB, {os.cpu_count()} CPUs")
        print("encrypt:")
        t_age, _ = measure("age -e", ["age", "-r", recipient, "-o", str(theirs), str(plain)],
                           size, args.repeats)
        t_ours, rss_enc = measure("tiprelay encrypt",
                                  [TIPRELAY, "encrypt", "-r", recipient, "-o", str(ours),
                                   str(plain)], size, args.repeats)
        print(f"  ratio (tiprelay/age throughput): {t_age / t_ours:.2f}x")
        print("decrypt:")
        out = d / "out"
        t_age_d, _ = measure("age -d", ["age", "-d", "-i", str(identity), "-o", str(out),
                                        str(theirs)], size, args.repeats)
        t_ours_d, rss_dec = measure("tiprelay decrypt",
                                    [TIPRELAY, "decrypt", "-i", str(identity), "-o", str(out),
                                     str(theirs)], size, args.repeats)
        print(f"  ratio (tiprelay/age throughput): {t_age_d / t_ours_d:.2f}x")
        if out.read_bytes() != plain.read_bytes():
            raise SystemExit("decrypted output differs from the input")
        print(f"peak RSS: encrypt {rss_enc / 1024:.1f} MiB, decrypt {rss_dec / 1024:.1f} MiB "
              f"(target < 64 MiB)")


if __name__ == "__main__":
    main()
