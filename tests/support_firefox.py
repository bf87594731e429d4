"""Debian's Firefox ESR at Tor Browser's three security levels, for the source tests.

Tor Browser is Firefox ESR with a security slider. ``SECURITY_LEVELS`` holds the
preferences its slider sets (torbutton's ``kSecuritySettings`` table), plus
``privacy.resistFingerprinting``, on at every level as in Tor Browser. *Safest*
also stops every page script: Tor Browser does that with NoScript while
``javascript.enabled`` stays on, so the driver refuses script requests by URL
(WebDriver BiDi network interception) rather than turning JavaScript off, and
renders ``<noscript>`` as NoScript does on pages whose scripts it blocks.

The browser is driven by a small Node script (tests/js/firefox_source.mjs, with
puppeteer-core over WebDriver BiDi; nothing is downloaded) started with default
signal dispositions and killed when the test ends, however it ends. Each run
gets a fresh profile folder.

    result = run_firefox_source(spec_for(relay.url, "safer", tmp_path, ...))
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support_node import NODE
from tests.support_process import spawned

FIREFOX = "/usr/bin/firefox-esr"
DRIVER = Path(__file__).resolve().parent / "js" / "firefox_source.mjs"
RUN_TIMEOUT_SECONDS = 180.0

QUIET_OFFLINE_PREFS: dict[str, Any] = {
    # Nothing but the relay: this machine has no network, and a browser waiting
    # for one stalls.
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.page": 0,
    "services.settings.server": "http://127.0.0.1:9/",
}

_TOR_BROWSER_COMMON = {"privacy.resistFingerprinting": True}
_SAFER = {
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "javascript.options.asmjs": False,
    "javascript.options.wasm": False,
    "mathml.disabled": True,
    "gfx.font_rendering.graphite.enabled": False,
    "gfx.font_rendering.opentype_svg.enabled": False,
}
SECURITY_LEVELS: dict[str, dict[str, Any]] = {
    "standard": dict(_TOR_BROWSER_COMMON),
    "safer": {**_TOR_BROWSER_COMMON, **_SAFER},
    "safest": {**_TOR_BROWSER_COMMON, **_SAFER, "svg.disabled": True},
}
"""Tor Browser's security levels as Firefox preferences (Safest's script blocking
is done by the driver: see the module docstring)."""


@dataclass(frozen=True)
class SourceVisit:
    """What the driver reports once the submission went through."""

    mode: str | None
    noscript_send_before: bool | None
    """At Safest: whether an enabled Send button was there before ``<noscript>`` was rendered."""
    shown: dict[str, bool]
    metadata: dict[str, Any] | None
    sealing: dict[str, Any] | None
    web_assembly: str
    status: str
    final_url: str
    requests: list[dict[str, Any]]
    blocked_scripts: list[str]
    page_errors: list[str]
    seconds: float
    events: list[dict[str, Any]]


def source_spec(
    url: str,
    level: str,
    profile_dir: Path,
    message: str,
    files: list[Path],
    *,
    hold_patch_at_offset: int | None = None,
    stop_when_slow: bool = False,
    read_metadata: bool = False,
) -> dict[str, Any]:
    """The driver's instructions: JS path at Standard and Safer, the form post at Safest.
    ``read_metadata``: report what the page's metadata panel says about ``files``."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {
        "executablePath": FIREFOX,
        "profileDir": str(profile_dir),
        "prefs": {**QUIET_OFFLINE_PREFS, **SECURITY_LEVELS[level]},
        "blockScripts": level == "safest",
        "expect": "server" if level == "safest" else "browser",
        "url": url,
        "message": message,
        "files": [str(path) for path in files],
        "timeoutMs": int(RUN_TIMEOUT_SECONDS * 1000) - 20_000,
    }
    if read_metadata:
        spec["readMetadata"] = True
    if stop_when_slow:
        spec["stopWhenSlow"] = True
    if hold_patch_at_offset is not None:
        spec["holdPatchAtOffset"] = hold_patch_at_offset
    return spec


EventHandler = Callable[[dict[str, Any], subprocess.Popen[str]], None]


def run_firefox_driver(
    driver_script: Path, spec: dict[str, Any], on_event: EventHandler | None = None
) -> dict[str, Any]:
    """Run a Node driver of Firefox to the end; its ``result`` event. ``on_event``
    sees each event as it comes (and may write to the driver's stdin)."""
    if not Path(FIREFOX).exists():
        raise RuntimeError(f"{FIREFOX} is missing: run scripts/setup (Debian package firefox-esr)")
    events: list[dict[str, Any]] = []
    lines: queue.Queue[str | None] = queue.Queue()
    log_path = Path(spec["profileDir"]).with_suffix(".driver.log")
    with (
        log_path.open("w") as log,
        spawned(
            [NODE, driver_script, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=driver_script.parent,
            start_new_session=True,  # the driver leads a group: Firefox dies with it
        ) as driver,
    ):
        assert driver.stdout is not None

        def pump() -> None:
            assert driver.stdout is not None
            for line in driver.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            returncode = _follow(driver, lines, events, on_event)
        finally:
            kill_firefox_left_behind(events)
    stderr = log_path.read_text(errors="replace")
    result = [event for event in events if event["event"] == "result"]
    if returncode != 0 or not result:
        raise AssertionError(f"the driver failed ({returncode}): {events}\n{stderr[-4000:]}")
    return {**result[0], "events": events}


def run_firefox_source(spec: dict[str, Any], on_event: EventHandler | None = None) -> SourceVisit:
    """Play the source in Firefox (tests/js/firefox_source.mjs) as ``spec`` says."""
    final = run_firefox_driver(DRIVER, spec, on_event)
    return SourceVisit(
        mode=final["mode"],
        noscript_send_before=final["noscriptSendBefore"],
        shown=final["shown"],
        metadata=final["metadata"],
        sealing=final["sealing"],
        web_assembly=final["webAssembly"],
        status=final["status"],
        final_url=final["finalUrl"],
        requests=final["requests"],
        blocked_scripts=final["blockedScripts"],
        page_errors=final["pageErrors"],
        seconds=final["seconds"],
        events=final["events"],
    )


def _follow(
    driver: subprocess.Popen[str],
    lines: queue.Queue[str | None],
    events: list[dict[str, Any]],
    on_event: EventHandler | None,
) -> int:
    """Read the driver's events until it closes its output; its exit status."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the driver took over {RUN_TIMEOUT_SECONDS} s: {events}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            break
        event = json.loads(line)
        events.append(event)
        if on_event is not None:
            on_event(event, driver)
    return driver.wait(timeout=30)


def kill_firefox_left_behind(events: list[dict[str, Any]]) -> None:
    """SIGKILL the Firefox process group the driver started, if it is still there."""
    for event in events:
        if event["event"] != "browser":
            continue
        pid = int(event["pid"])
        with contextlib.suppress(OSError):
            if "firefox" in Path(f"/proc/{pid}/comm").read_text():
                os.killpg(pid, signal.SIGKILL)


CONVERSATION_DRIVER = Path(__file__).resolve().parent / "js" / "firefox_conversation.mjs"


def conversation_spec(url: str, level: str, profile_dir: Path, message: str) -> dict[str, Any]:
    """Instructions for tests/js/firefox_conversation.mjs: a tip with the codename
    the page shows, then the "read replies" form with that codename in upper case.
    At Safest the driver renders ``<noscript>`` as NoScript does where it blocks scripts."""
    spec = source_spec(url, level, profile_dir, message, [])
    spec["typedCodename"] = "upper"
    spec["emulateNoscript"] = level == "safest"
    return spec


def run_firefox_conversation(
    spec: dict[str, Any], on_event: EventHandler | None = None
) -> dict[str, Any]:
    """Play a source's conversation in Firefox; the driver's ``result`` event."""
    return run_firefox_driver(CONVERSATION_DRIVER, spec, on_event)
