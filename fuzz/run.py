"""Run one fuzz target: ``python -m fuzz.run TARGET (--seconds N | --runs N)``.

The fuzzer (atheris, libFuzzer inside) runs in a child process with default
signal dispositions, in its own process group, killed if it outlives its
budget. The corpus starts from ``fuzz.seeds`` in a temporary folder (or
``--corpus DIR``, kept). A finding is written to ``--findings`` (default
``fuzz-findings/``) as ``crash-*`` / ``timeout-*`` / ``oom-*``; replay one with
``python -m fuzz.run TARGET --reproduce FILE``.

Prints one summary line: ``TARGET: N executions in S s, F finding(s)``; exits 1
when there is a finding, 2 when the fuzzer could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

_INPUT_TIMEOUT_SECONDS = 10
_RSS_LIMIT_MB = 2048
_KILL_SLACK_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"Done (\d+) runs in")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_TARGET_NAMES = (
    "age_header", "armor", "decrypt", "stream", "upload_check", "tar", "unpacked", "tus_headers",
    "multipart", "openpgp_packets", "json_body", "harness_check",
)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=_TARGET_NAMES)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=int, help="stop after this many seconds")
    budget.add_argument("--runs", type=int, help="stop after this many executions")
    parser.add_argument("--corpus", type=Path, help="keep the corpus in this folder")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--timeout", type=int, default=_INPUT_TIMEOUT_SECONDS,
                        help="seconds one input may take before it is a finding")
    parser.add_argument("--reproduce", type=Path, help="run the target once on this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    libfuzzer = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.libfuzzer = libfuzzer
    if not args.reproduce and not args.worker and args.seconds is None and args.runs is None:
        parser.error("give --seconds N or --runs N")
    return args


def _worker(target_name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    # aiohttp's reader is fuzzed only by the multipart target; instrumenting it
    # costs every other target seconds of start-up.
    packages = ["relay", "aiohttp", "multidict"] if target_name == "multipart" else ["relay"]
    with atheris.instrument_imports(include=packages):
        from fuzz.targets import TARGETS
    target = TARGETS[target_name]
    atheris.Setup([sys.argv[0], *libfuzzer_args], target.run)
    atheris.Fuzz()


def _reproduce(target_name: str, path: Path) -> int:
    from fuzz.targets import TARGETS

    try:
        TARGETS[target_name].run(path.read_bytes())
    except Exception:
        traceback.print_exc()
        print(f"{target_name}: {path} is a finding")
        return 1
    print(f"{target_name}: {path} is handled correctly")
    return 0


def _default_signals() -> None:
    """In the fuzzer child: default signal dispositions, and death with its parent."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _fuzz(args: argparse.Namespace) -> int:
    from fuzz.seeds import SEEDS
    from fuzz.targets import MAX_INPUT_BYTES

    args.findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{args.target}-") as scratch:
        corpus = args.corpus or Path(scratch) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        seeds = SEEDS[args.target]()
        for number, seed in enumerate(seeds):
            (corpus / f"seed-{number:04d}").write_bytes(seed[:MAX_INPUT_BYTES])
        libfuzzer = [
            f"-max_len={MAX_INPUT_BYTES}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={_RSS_LIMIT_MB}",
            f"-artifact_prefix={args.findings.resolve()}/{args.target}-",
            "-print_final_stats=1",
        ]
        budget = args.seconds if args.seconds is not None else 24 * 3600
        if args.runs is not None:
            libfuzzer.append(f"-runs={args.runs}")
        if args.seconds is not None:
            libfuzzer.append(f"-max_total_time={args.seconds}")
        command = [sys.executable, "-m", "fuzz.run", args.target, "--worker", "--",
                   *libfuzzer, str(corpus)]
        started = time.monotonic()
        log_path = Path(scratch) / "fuzzer.log"
        with log_path.open("wb") as log:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_default_signals, env=_child_env(scratch))
            try:
                returncode = child.wait(timeout=budget + _KILL_SLACK_SECONDS)
            except BaseException:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                raise
        elapsed = time.monotonic() - started
        output = "".join(
            line for line in log_path.read_text(errors="replace").splitlines(keepends=True)
            if not line.startswith("INFO: Instrumenting")
        )
    return _report(args.target, output, returncode, elapsed, len(seeds))


def _child_env(scratch: str) -> dict[str, str]:
    """The fuzzer's environment: its temporary files go under ``scratch``, removed after.

    libFuzzer ends the process without running Python's exit handlers.
    """
    env = dict(os.environ)
    env["TMPDIR"] = scratch
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env


def _report(target: str, output: str, returncode: int, elapsed: float, seed_count: int) -> int:
    executed = _EXECUTED.findall(output) or _DONE.findall(output)
    executions = int(executed[-1]) if executed else 0
    findings = _ARTIFACT.findall(output)
    if returncode != 0 and not findings:
        print(output[-4000:])
        print(f"{target}: the fuzzer failed (exit {returncode}) after {elapsed:.1f} s")
        return 2
    if findings:
        print(output[-6000:])
    print(f"{target}: {executions} executions in {elapsed:.1f} s from {seed_count} seeds, "
          f"{len(findings)} finding(s)" + "".join(f"\n  finding: {path}" for path in findings))
    return 1 if findings else 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if args.worker:
        _worker(args.target, args.libfuzzer)
        return 0
    if args.reproduce:
        return _reproduce(args.target, args.reproduce)
    return _fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
