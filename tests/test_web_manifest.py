"""The release manifest, and ``tiprelay verify-web`` against a real relay.

The relay runs from a copy of the checkout (PYTHONPATH puts the copy's
``relay`` first), so a test can change one byte of what it serves, restart it,
and see verify-web name the file, without touching this checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.server.middlewares import CONTENT_SECURITY_POLICY
from relay.web_manifest import WebManifest, WebManifestError
from tests.support_checkout import BUNDLE, REPO, build_bundle, copy_checkout
from tests.support_process import run
from tests.support_server import RelayServer, new_relay

TIPRELAY = Path(sys.executable).with_name("tiprelay")
NODE_BIN = str(Path(sys.executable).parent)


def _tiprelay_from(checkout: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``tiprelay ARGS`` with the ``relay`` package of ``checkout``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIPRELAY_")}
    env["PYTHONPATH"] = str(checkout)
    return run([TIPRELAY, *args], env=env, capture_output=True, text=True, timeout=120)


def _verify(relay: RelayServer, manifest: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [TIPRELAY, "verify-web", "--server", relay.url, manifest],
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the manifest ------------------------------------------------------------------


@pytest.mark.slow  # about 5 s: two copies of node_modules and two bundle builds
def test_manifest_made_on_two_checkouts_is_identical(tmp_path: Path) -> None:
    manifests = []
    for number, folder in enumerate(("one", "deeper/other-checkout")):
        checkout = copy_checkout(tmp_path / folder, node_modules=True)
        env = dict(os.environ, PATH=NODE_BIN + os.pathsep + os.environ["PATH"])
        env["SOURCE_DATE_EPOCH"] = str(1_000_000_000 + number * 86_400 * 365)
        bundle = build_bundle(checkout, env)
        made = _tiprelay_from(checkout, "web-manifest", "-o", checkout / "web-manifest.json")
        assert made.returncode == 0, made.stderr
        text = (checkout / "web-manifest.json").read_text()
        assert json.loads(text)["static_files"]["dist/app.js"] == hashlib.sha256(bundle).hexdigest()
        assert str(tmp_path) not in text
        manifests.append(text)
        time.sleep(1.1)
    assert manifests[0] == manifests[1]


def test_manifest_lists_every_static_file_and_the_served_policy(tmp_path: Path) -> None:
    made = run([TIPRELAY, "web-manifest"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    manifest = WebManifest.from_json(made.stdout)
    static_dir = REPO / "relay" / "web" / "static"
    on_disk = {
        path.relative_to(static_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in static_dir.rglob("*")
        if path.is_file()
    }
    assert manifest.static_files == on_disk
    assert BUNDLE.relative_to("relay/web/static").as_posix() in manifest.static_files
    assert manifest.content_security_policy == CONTENT_SECURITY_POLICY
    assert made.stdout == manifest.to_json()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"format": "other"}',
        '{"format": "tiprelay-web-manifest-1", "static_files": {"../x": "' + "0" * 64 + '"},'
        ' "content_security_policy": ""}',
        '{"format": "tiprelay-web-manifest-1", "static_files": {"a.js": "xyz"},'
        ' "content_security_policy": ""}',
    ],
)
def test_a_malformed_manifest_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(WebManifestError):
        WebManifest.from_json(text)


# -- verify-web against a real relay ---------------------------------------------


@pytest.fixture
def relay_copy(tmp_path: Path) -> Iterator[tuple[RelayServer, Path, Path]]:
    """(a running relay served from a copy of the checkout, the copy, its manifest)."""
    checkout = copy_checkout(tmp_path / "checkout")
    (checkout / BUNDLE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / BUNDLE, checkout / BUNDLE)
    manifest = tmp_path / "web-manifest.json"
    made = _tiprelay_from(checkout, "web-manifest", "-o", manifest)
    assert made.returncode == 0, made.stderr
    relay = new_relay(tmp_path / "relay", env={"PYTHONPATH": str(checkout)})
    relay.start()
    try:
        yield relay, checkout, manifest
    finally:
        relay.stop()


@pytest.mark.slow  # about 6 s: a relay started (and restarted), a CLI run
def test_verify_web_passes_against_the_relay_the_manifest_was_made_for(
    relay_copy: tuple[RelayServer, Path, Path],
) -> None:
    relay, _, manifest = relay_copy
    result = _verify(relay, manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for page in ("/", "/?lang=uk", "/?lang=en", "/received"):
        assert f"ok   {page}: Content-Security-Policy as in the manifest" in result.stdout
        assert f"ok   {page}: no inline script" in result.stdout
    assert "ok   /static/dist/app.js: SHA-256 as in the manifest" in result.stdout
    assert "ok   /static/relay.css: SHA-256 as in the manifest" in result.stdout
    assert "checks passed" in result.stdout


@pytest.mark.slow  # about 6 s: a relay started (and restarted), a CLI run
def test_verify_web_names_the_file_after_one_byte_of_the_served_js_changes(
    relay_copy: tuple[RelayServer, Path, Path],
) -> None:
    relay, checkout, manifest = relay_copy
    bundle = bytearray((checkout / BUNDLE).read_bytes())
    bundle[len(bundle) // 2] ^= 0x01
    (checkout / BUNDLE).write_bytes(bytes(bundle))
    relay.stop()
    relay.start()
    result = _verify(relay, manifest)
    assert result.returncode == 1
    changed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert changed, result.stdout
    assert all(line.startswith("FAIL /static/dist/app.js: CHANGED") for line in changed), changed
    assert hashlib.sha256(bytes(bundle)).hexdigest() in changed[0]
    assert "checks FAILED" in result.stderr


@pytest.mark.slow  # about 6 s: a relay started (and restarted), a CLI run
def test_verify_web_fails_when_a_page_template_gains_an_inline_script(
    relay_copy: tuple[RelayServer, Path, Path],
) -> None:
    relay, checkout, manifest = relay_copy
    template = checkout / "relay" / "web" / "templates" / "base.html"
    text = template.read_text()
    assert "</body>" in text
    code = "fetch('/x')"
    template.write_text(text.replace("</body>", f"<script>{code}</script></body>", 1))
    relay.stop()
    relay.start()
    result = _verify(relay, manifest)
    assert result.returncode == 1
    assert f"FAIL /: inline script: <script> with {len(code)} characters inline" in result.stdout
    assert "FAIL /received: inline script" in result.stdout
    assert "ok   /static/dist/app.js: SHA-256 as in the manifest" in result.stdout


@pytest.mark.slow  # about 6 s: a relay started (and restarted), a CLI run
def test_verify_web_fails_when_a_page_loads_a_file_not_in_the_manifest(
    relay_copy: tuple[RelayServer, Path, Path],
) -> None:
    relay, checkout, manifest = relay_copy
    (checkout / "relay" / "web" / "static" / "extra.js").write_text("window.x = 1;\n")
    template = checkout / "relay" / "web" / "templates" / "base.html"
    template.write_text(
        template.read_text().replace("</body>", '<script src="/static/extra.js"></script></body>')
    )
    relay.stop()
    relay.start()
    result = _verify(relay, manifest)
    assert result.returncode == 1
    assert "FAIL /: loads files not in the manifest: '/static/extra.js'" in result.stdout


def test_verify_web_reports_an_unreachable_relay_clearly(tmp_path: Path) -> None:
    manifest = tmp_path / "web-manifest.json"
    manifest.write_text(WebManifest({}, CONTENT_SECURITY_POLICY).to_json())
    result = run(
        [TIPRELAY, "verify-web", "--server", "http://127.0.0.1:9", manifest],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot fetch it" in result.stderr


@pytest.mark.slow  # about 6 s: a relay started, two CLI runs
def test_verify_web_checks_the_precompressed_copies_a_browser_is_sent(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    static = Path("relay/web/static")
    shutil.copytree(REPO / static / "dist", checkout / static / "dist")
    for copy in (REPO / static).glob("*.*[rz]"):  # relay.css.br, relay.css.gz
        shutil.copy2(copy, checkout / static / copy.name)
    manifest = tmp_path / "web-manifest.json"
    assert _tiprelay_from(checkout, "web-manifest", "-o", manifest).returncode == 0
    listed = json.loads(manifest.read_text())["static_files"]
    assert {"dist/app.js.br", "dist/app.js.gz", "relay.css.br", "relay.css.gz"} <= set(listed)
    relay = new_relay(tmp_path / "relay", env={"PYTHONPATH": str(checkout)})
    relay.start()
    try:
        passed = _verify(relay, manifest)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "ok   /static/dist/app.js.br: SHA-256 as in the manifest" in passed.stdout
        # A relay that sends Tor Browser (which asks for brotli) a different script
        # while the plain file still matches is caught.
        brotli_copy = checkout / static / "dist" / "app.js.br"
        tampered = bytearray(brotli_copy.read_bytes())
        tampered[len(tampered) // 2] ^= 0x01
        brotli_copy.write_bytes(bytes(tampered))
        failed = _verify(relay, manifest)
    finally:
        relay.stop()
    assert failed.returncode == 1
    changed = [line for line in failed.stdout.splitlines() if line.startswith("FAIL")]
    assert changed and all(
        line.startswith("FAIL /static/dist/app.js.br: CHANGED") for line in changed
    ), changed
