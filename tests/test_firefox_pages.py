"""Every source page in Firefox ESR: accessible, readable at 1000 and 400 px, usable by keyboard.

The relay keeps conversations, so the form shows its codename; a tip is sent
from it in each language by the page's script and as the no-JS form posts
it, and both confirmations (the codename shown once more) are looked at too.

axe-core (npm ``axe-core``) runs in Debian's Firefox ESR at Tor Browser's
Standard level on every page a source can reach with GET (relay.web_verify's
list: the form, the receipt, the error page) in ru, uk and en, and finds no
serious or critical violation. Each page is photographed whole at 1000 px and at
400 px wide into ``build/screenshots/`` (gitignored; the test prints the path)
for a person to look at, and no page is wider than the window at either width.
A message is sent with the keyboard alone: Tab to the message, type, Tab to the
send button, Enter, and the relay stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.crypto.signing import SigningKey
from relay.web_verify import SOURCE_PAGES
from tests.support_conversation import conversation_relay
from tests.support_firefox import FIREFOX, QUIET_OFFLINE_PREFS, SECURITY_LEVELS, run_firefox_driver
from tests.support_server import RelayServer

pytestmark = pytest.mark.slow  # one Firefox, nine pages, two widths: about 15 s
ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "js" / "firefox_pages.mjs"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "screenshots"
WIDTHS = [1000, 400]
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayServer]:
    settings = {"default_language": "ru"}
    with conversation_relay(tmp_path / "relay", settings, SigningKey.generate()) as server:
        yield server


def page_name(path: str) -> str:
    """``/received?lang=uk`` -> ``received-uk``; ``/`` -> ``form-default``."""
    route, _, query = path.partition("?")
    language = query.removeprefix("lang=") or "default"
    return f"{route.strip('/').replace('/', '-') or 'form'}-{language}"


def test_source_pages_are_accessible_fit_narrow_screens_and_work_by_keyboard(
    relay: RelayServer, tmp_path: Path
) -> None:
    pages = [{"name": page_name(path), "url": relay.url + path} for path, _ in SOURCE_PAGES]
    pages += [{"name": "received-ru", "url": relay.url + "/received?lang=ru"}]
    sends = [
        {"name": f"sent-{how}-{language}", "url": f"{relay.url}/?lang={language}", "how": how}
        for language in ("ru", "uk", "en")
        for how in ("js", "form")
    ]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "profile"
    profile.mkdir()
    spec = {
        "executablePath": FIREFOX,
        "profileDir": str(profile),
        "prefs": {**QUIET_OFFLINE_PREFS, **SECURITY_LEVELS["standard"]},
        "axeSource": str(AXE),
        "pages": pages,
        "sends": sends,
        "widths": WIDTHS,
        "screenshotDir": str(SCREENSHOTS),
        "keyboard": {"url": relay.url + "/?lang=uk", "message": "Надіслано з клавіатури."},
    }
    result = run_firefox_driver(DRIVER, spec)
    print(f"screenshots of {len(pages)} pages at {WIDTHS} px: {SCREENSHOTS}")

    names = {page["name"] for page in pages + sends}
    assert {f"form-{language}" for language in ("ru", "uk", "en")} <= names
    assert {f"received-{language}" for language in ("ru", "uk", "en")} <= names
    blocking = {
        name: [v for v in found if v["impact"] in BLOCKING_IMPACTS]
        for name, found in result["violations"].items()
    }
    assert set(blocking) == names
    assert all(not found for found in blocking.values()), blocking
    assert len(result["screenshots"]) == len(names) * len(WIDTHS)
    for shot in result["screenshots"]:
        assert Path(shot["path"]).stat().st_size > 1000, shot
        assert shot["overflow"] <= 0, f"wider than the window: {shot}"
    assert result["keyboard"]["stored"] is True
    assert len(relay.blob_paths()) == 1 + len(sends)
