"""Every fuzz target runs a short, bounded session without a finding.

Each target runs as ``python -m fuzz.run TARGET --runs N`` in a child process
(default signal dispositions, killed if it outlives its time), exactly as a
developer runs it; the longer runs are documented in docs/fuzzing.md.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.seeds import HARNESS_CHECK_SEED
from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
_TIMEOUT_SECONDS = 120

# Executions per target: a few seconds each (the tar, unpacked and STREAM targets do
# real file-system work or seal up to a MiB per input).
RUNS = {
    "age_header": 20_000,
    "armor": 20_000,
    "decrypt": 20_000,
    "stream": 600,
    "upload_check": 5_000,
    "tar": 1_000,
    "unpacked": 600,
    "tus_headers": 50_000,
    "multipart": 2_500,
    "openpgp_packets": 20_000,
    "json_body": 20_000,
}


def _default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)


def run_fuzzer(*args: str, timeout: float = _TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fuzz.run", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, preexec_fn=_default_signals,
    )


def test_every_target_has_a_bounded_run() -> None:
    assert set(RUNS) | {"harness_check"} == set(TARGETS)


def test_a_finding_is_reported_kept_and_reproducible(tmp_path: Path) -> None:
    result = run_fuzzer("harness_check", "--runs", "100", "--findings", str(tmp_path))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "IndexError" in result.stdout
    findings = list(tmp_path.iterdir())
    assert len(findings) == 1 and "1 finding(s)" in result.stdout
    assert findings[0].read_bytes() == HARNESS_CHECK_SEED
    replay = run_fuzzer("harness_check", "--reproduce", str(findings[0]))
    assert replay.returncode == 1 and "is a finding" in replay.stdout


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_target_finds_nothing_in_a_short_run(target: str, tmp_path: Path) -> None:
    result = run_fuzzer(target, "--runs", str(RUNS[target]),
                        "--findings", str(tmp_path / "findings"))
    summary = re.search(r"(\d+) executions in .* (\d+) finding\(s\)", result.stdout)
    assert result.returncode == 0 and summary, result.stdout[-6000:] + result.stderr[-2000:]
    executions, findings = int(summary.group(1)), int(summary.group(2))
    print(result.stdout.strip().splitlines()[-1])
    assert findings == 0
    assert executions >= RUNS[target]
    assert not list((tmp_path / "findings").iterdir())
