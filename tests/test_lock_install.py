"""scripts/install-lock holds the lock, whatever the package index offers later.

The lock is the whole resolution: install-lock installs its files with their
hashes and resolves nothing (--no-deps), then runs pip check. These tests put a
local package index on 127.0.0.1 in front of the install. It serves the locked
files of three small packages made here, and newer releases of each beside
them, one of them reachable only through an extra (``alpha`` needs
``beta[extra]``, as aiohttp-socks needs ``python-socks[asyncio]``). The
install must take exactly the locked versions and files, fetch nothing else,
and fail with a message naming the lock and scripts/lock when a locked file
is missing.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support_process import run
from tests.test_dependency_lock import DEV_LOCK, read_lock

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FakePackage:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}"

    @property
    def filename(self) -> str:
        return f"{self.stem}-py3-none-any.whl"


LOCKED = (
    FakePackage("tiprelay-test-alpha", "1.0", requires=("tiprelay-test-beta[extra]>=1.0",)),
    FakePackage(
        "tiprelay-test-beta",
        "1.0",
        requires=('tiprelay-test-gamma>=1.0; extra == "extra"',),
        extras=("extra",),
    ),
    FakePackage("tiprelay-test-gamma", "1.0"),
)
NEWER = (
    FakePackage("tiprelay-test-alpha", "2.0", requires=("tiprelay-test-beta[extra]>=1.0",)),
    FakePackage(
        "tiprelay-test-beta",
        "1.1",
        requires=('tiprelay-test-gamma>=1.0; extra == "extra"',),
        extras=("extra",),
    ),
    FakePackage("tiprelay-test-gamma", "9.0"),
)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(package: FakePackage, folder: Path) -> Path:
    """A minimal, valid pure-Python wheel of ``package``."""
    module = package.name.replace("-", "_")
    info = f"{package.stem}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {package.name}",
        f"Version: {package.version}",
        *(f"Provides-Extra: {extra}" for extra in package.extras),
        *(f"Requires-Dist: {requirement}" for requirement in package.requires),
    ]
    files = {
        f"{module}/__init__.py": f'VERSION = "{package.version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tiprelay-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / package.filename
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class LocalIndex:
    """A PEP 503 "simple" index served from a folder, recording what was fetched."""

    root: Path
    url: str = ""
    fetched: list[str] = field(default_factory=list)

    def publish(self, wheels: list[Path]) -> None:
        by_project: dict[str, list[Path]] = {}
        for wheel in wheels:
            project = wheel.name.split("-")[0].replace("_", "-")
            by_project.setdefault(project, []).append(wheel)
        for project, files in by_project.items():
            page = self.root / "simple" / project
            page.mkdir(parents=True, exist_ok=True)
            links = "".join(
                f'<a href="/files/{f.name}#sha256={sha256_of(f)}">{f.name}</a>\n' for f in files
            )
            (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>")


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path / "index")
    (index.root / "files").mkdir(parents=True)
    root = str(index.root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=root, **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.path.startswith("/files/"):
                index.fetched.append(self.path.removeprefix("/files/"))
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def write_lock(path: Path, wheels: dict[FakePackage, Path]) -> None:
    """A lock in scripts/lock's format: name==version and the file's hash."""
    entries = [
        f"{package.name}=={package.version} \\\n    --hash=sha256:{sha256_of(wheel)}\n"
        for package, wheel in wheels.items()
    ]
    path.write_text("# made by tests/test_lock_install.py\n" + "".join(entries))


@pytest.fixture
def venv_with_locked_pip(tmp_path: Path) -> Path:
    """A new venv (with whatever pip ``venv`` brings), then pip as the lock pins it."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    run(["bash", REPO / "scripts" / "install-locked", venv, "pip"], check=True, timeout=300)
    return venv


def install_lock(venv: Path, lock: Path, index: LocalIndex) -> tuple[int, str]:
    env = {
        **os.environ,
        "PIP_INDEX_URL": index.url,
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_CONFIG_FILE": os.devnull,
    }
    result = run(
        ["bash", REPO / "scripts" / "install-lock", venv, lock],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def installed_versions(venv: Path) -> dict[str, str]:
    result = run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("==", 1) for line in result.stdout.split() if "==" in line)


@pytest.mark.slow
def test_newer_releases_on_the_index_change_nothing(
    tmp_path: Path, local_index: LocalIndex, venv_with_locked_pip: Path
) -> None:
    locked = {package: build_wheel(package, local_index.root / "files") for package in LOCKED}
    for package in NEWER:
        build_wheel(package, local_index.root / "files")
    local_index.publish(sorted((local_index.root / "files").glob("*.whl")))
    lock = tmp_path / "lock.txt"
    write_lock(lock, locked)

    status, output = install_lock(venv_with_locked_pip, lock, local_index)
    assert status == 0, output

    versions = installed_versions(venv_with_locked_pip)
    for package in LOCKED:
        assert versions.get(package.name) == package.version, (package, versions)
    # Exactly the locked files were fetched: never a newer one, never twice.
    assert sorted(local_index.fetched) == sorted(p.filename for p in LOCKED)
    # What is installed is byte for byte what the lock hashes: each package's
    # module holds the locked version string.
    site = next((venv_with_locked_pip / "lib").glob("python*/site-packages"))
    for package in LOCKED:
        module = site / package.name.replace("-", "_") / "__init__.py"
        assert module.read_text() == f'VERSION = "{package.version}"\n'
    # pip itself is the lock's, not the one the venv module brought.
    pip_locked = read_lock(DEV_LOCK)["pip"].version
    assert versions["pip"] == pip_locked


@pytest.mark.slow
def test_a_locked_file_missing_from_the_index_names_the_lock_and_scripts_lock(
    tmp_path: Path, local_index: LocalIndex, venv_with_locked_pip: Path
) -> None:
    locked = {package: build_wheel(package, local_index.root / "files") for package in LOCKED}
    for package in NEWER:
        build_wheel(package, local_index.root / "files")
    lock = tmp_path / "lock.txt"
    write_lock(lock, locked)
    missing = LOCKED[2]
    (local_index.root / "files" / missing.filename).unlink()
    local_index.publish(sorted((local_index.root / "files").glob("*.whl")))

    status, output = install_lock(venv_with_locked_pip, lock, local_index)
    assert status != 0
    assert missing.name in output, output
    assert str(lock) in output, output
    assert "scripts/lock" in output, output
    # The newer release that is there was not taken instead.
    assert local_index.fetched == [p.filename for p in LOCKED[:2]] or sorted(
        local_index.fetched
    ) == sorted(p.filename for p in LOCKED[:2]), local_index.fetched


@pytest.mark.slow
def test_a_lock_that_misses_a_dependency_fails_pip_check(
    tmp_path: Path, local_index: LocalIndex, venv_with_locked_pip: Path
) -> None:
    """--no-deps trusts the lock to be whole; pip check holds it to that."""
    locked = {package: build_wheel(package, local_index.root / "files") for package in LOCKED}
    local_index.publish(sorted((local_index.root / "files").glob("*.whl")))
    lock = tmp_path / "lock.txt"
    del locked[LOCKED[1]]
    write_lock(lock, locked)

    status, output = install_lock(venv_with_locked_pip, lock, local_index)
    assert status != 0
    assert "pip check" in output and LOCKED[1].name in output, output
    assert str(lock) in output and "scripts/lock" in output, output
