"""The reviewer's workflow at scale: `tiprelay pull` then `tiprelay decrypt` of a bundle.

Starts a real `tiprelay serve` on 127.0.0.1, fills it with 200 browser-sealed
submissions of mixed sizes (log-normal, 1 GiB in total by default) through the
tus endpoint, then times, as whole processes with their peak RSS:

  pull      tiprelay pull --server URL --key KEY -o BUNDLE
  decrypt   tiprelay decrypt -i IDENTITY BUNDLE -o OUT   (verify hash, decrypt, safe extract)
  age -d    stock age -d on the same .age files, one process each, output to files
  age|tar   stock age -d | tar -x, the stock tools' equivalent of `tiprelay decrypt`

and prints throughput for each step and the ratio tiprelay / stock (throughput;
>= 1.0 means tiprelay is at least as fast).

    .venv/bin/python bench/pull_decrypt.py                 # 200 submissions, 1 GiB
    .venv/bin/python bench/pull_decrypt.py --total-mib 64  # a quick run
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from relay.container import SubmissionArchive
from relay.crypto.encrypt import Encryptor
from relay.crypto.recipients import X25519Recipient

TIPRELAY = str(Path(sys.executable).with_name("tiprelay"))
MiB = 1 << 20
UPLOAD_CHUNK = 16 * MiB


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def mixed_sizes(count: int, total: int, seed: int = 4) -> list[int]:
    """``count`` sizes, log-normal (many small, a few large), summing to ``total``."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.6) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [max(1, int(weight * scale)) for weight in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def write_sealed_submission(path: Path, size: int, recipient: X25519Recipient, number: int) -> None:
    """A browser-style submission (padded tar, age-encrypted) with one attachment of ``size``."""
    archive = SubmissionArchive(language="ru", sealed_by="browser")
    encryptor = Encryptor([recipient])
    block = os.urandom(MiB)
    with path.open("wb") as out:
        out.write(encryptor.start())
        out.write(encryptor.update(archive.message(f"submission {number}")))
        out.write(encryptor.update(archive.file_header(f"evidence-{number}.bin", size)))
        remaining = size
        while remaining:
            piece = block[: min(remaining, MiB)]
            out.write(encryptor.update(archive.file_data(piece)))
            remaining -= len(piece)
        out.write(encryptor.update(archive.file_end()))
        for chunk in archive.finish():
            out.write(encryptor.update(chunk))
        out.write(encryptor.finish())


def tus_upload(port: int, path: Path) -> None:
    length = path.stat().st_size
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    tus = {"Tus-Resumable": "1.0.0"}
    connection.request("POST", "/api/v1/uploads", headers={**tus, "Upload-Length": str(length)})
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        raise SystemExit(f"upload creation failed: {response.status}")
    location = response.headers["Location"]
    offset = 0
    with path.open("rb") as source:
        while offset < length:
            chunk = source.read(UPLOAD_CHUNK)
            connection.request("PATCH", location, body=chunk, headers={
                **tus, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            })
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise SystemExit(f"upload failed at {offset}: {response.status}")
            offset += len(chunk)
    connection.close()


def run_timed(argv: list[str]) -> tuple[float, int]:
    """Wall time (s) and peak RSS (KiB) of one command; stops the bench if it fails.

    GNU time measures the RSS: a child forked straight from this (large) Python
    process would report this process's RSS as its own peak.
    """
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{argv[:2]} failed: {result.stderr.decode(errors='replace')}")
        return elapsed, int(rss_file.read().strip().splitlines()[-1])


def start_relay(
    base: Path, recipient: str, api_key_line: str
) -> tuple[subprocess.Popen[bytes], int]:
    keys = base / "keys"
    keys.mkdir()
    (keys / "reviewer.toml").write_text(
        f'name = "reviewer"\nage_recipient = "{recipient}"\napi_key = "{api_key_line}"\n'
    )
    port = free_port()
    config = base / "relay.toml"
    config.write_text(
        f'host = "127.0.0.1"\nport = {port}\ndata_dir = "{base / "data"}"\n'
        f'keys_dir = "{keys}"\nlog_level = "warning"\nmax_submission_bytes = "4 GiB"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPRELAY_")}
    server = subprocess.Popen([TIPRELAY, "serve", "--config", str(config)], env=env,
                              stdout=subprocess.DEVNULL, stderr=(base / "server.log").open("wb"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("tiprelay serve did not start:\n" + (base / "server.log").read_text())


def stock_decrypt(identity: Path, bundle: Path, out: Path, with_tar: bool) -> tuple[float, int]:
    """Stock age (and tar) over every file of the bundle: total time, max peak RSS."""
    total, peak = 0.0, 0
    out.mkdir()
    for index, path in enumerate(sorted(bundle.glob("*.age"))):
        if with_tar:
            folder = out / str(index)
            folder.mkdir(parents=True)
            command = f'age -d -i "{identity}" "{path}" | tar -x -C "{folder}"'
            elapsed, rss = run_timed(["sh", "-c", command])
        else:
            elapsed, rss = run_timed(["age", "-d", "-i", str(identity), "-o",
                                      str(out / f"{index}.tar"), str(path)])
        total, peak = total + elapsed, max(peak, rss)
    return total, peak


def report(label: str, size: int, seconds: float, rss_kib: int) -> None:
    print(f"  {label:<34} {seconds:7.2f} s  {size / seconds / 1e6:8.1f} MB/s  "
          f"peak RSS {rss_kib / 1024:6.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of submissions")
    parser.add_argument("--total-mib", type=int, default=1024, help="attachment bytes in MiB")
    args = parser.parse_args()
    if not shutil.which("age") or not Path("/usr/bin/time").exists():
        raise SystemExit("stock age and GNU time are needed (apt-get install age time)")
    bench_dir = os.environ.get("BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix="tiprelay-bench-", dir=bench_dir) as tmp:
        base = Path(tmp)
        identity = base / "identity.txt"
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                                   capture_output=True, text=True).stdout.strip()
        key = base / "api.key"
        api_line = subprocess.run([TIPRELAY, "reviewer-key", "-o", str(key)], check=True,
                                  capture_output=True, text=True).stdout.strip()
        server, port = start_relay(base, recipient, api_line)
        try:
            sizes = mixed_sizes(args.count, args.total_mib * MiB)
            print(f"{args.count} submissions, attachments {min(sizes)} B .. "
                  f"{max(sizes) / MiB:.1f} MiB, {sum(sizes) / MiB:.0f} MiB in total; "
                  f"{os.cpu_count()} CPUs")
            started = time.perf_counter()
            staging = base / "staging.age"
            for number, size in enumerate(sizes):
                write_sealed_submission(staging, size, X25519Recipient.parse(recipient), number)
                tus_upload(port, staging)
            staging.unlink()
            print(f"  (setup: sealed and uploaded in {time.perf_counter() - started:.1f} s)")

            bundle = base / "bundle"
            pull_s, pull_rss = run_timed([TIPRELAY, "pull", "--server", f"http://127.0.0.1:{port}",
                                          "--key", str(key), "-o", str(bundle)])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        manifest = json.loads((bundle / "manifest.json").read_text())
        bundle_bytes = sum(entry["size"] for entry in manifest["submissions"])
        if len(manifest["submissions"]) != args.count:
            raise SystemExit("the bundle does not hold every submission")

        subprocess.run(["sync"], check=True)
        ours_s, ours_rss = run_timed([TIPRELAY, "decrypt", "-i", str(identity), str(bundle),
                                      "-o", str(base / "out")])
        shutil.rmtree(base / "out")
        # Every phase starts from a synced page cache: otherwise the gigabyte
        # the previous phase left dirty is written back during this one.
        subprocess.run(["sync"], check=True)
        age_s, age_rss = stock_decrypt(identity, bundle, base / "age-out", with_tar=False)
        shutil.rmtree(base / "age-out")
        subprocess.run(["sync"], check=True)
        tar_s, tar_rss = stock_decrypt(identity, bundle, base / "tar-out", with_tar=True)
        shutil.rmtree(base / "tar-out")
        subprocess.run(["sync"], check=True)
        # The second run of ours, after the stock tools, evens out page-cache effects.
        ours2_s, ours2_rss = run_timed([TIPRELAY, "decrypt", "-i", str(identity), str(bundle),
                                        "-o", str(base / "out")])
        ours_s, ours_rss = min(ours_s, ours2_s), max(ours_rss, ours2_rss)

        print(f"bundle: {bundle_bytes / MiB:.0f} MiB of ciphertext")
        report("pull (HTTP, verify, manifest)", bundle_bytes, pull_s, pull_rss)
        report("tiprelay decrypt (bundle)", bundle_bytes, ours_s, ours_rss)
        report("stock age -d, one per file", bundle_bytes, age_s, age_rss)
        report("stock age -d | tar -x, one per file", bundle_bytes, tar_s, tar_rss)
        print(f"  ratio tiprelay decrypt / age -d:       {age_s / ours_s:.2f}x (target >= 1.0)")
        print(f"  ratio tiprelay decrypt / age -d | tar: {tar_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
