"""The conversation pages in Debian's Firefox ESR at Tor Browser's three security
levels (issue 11): one Firefox per level sends a tip with the codename the page
shows, and after replies are put reads them with the "read replies" form.

At Standard and Safer the codename is made in the browser; the test derives the
keys in Python from the shown codename and the relay's salt, puts a genuine
reply and a forgery through the signed reviewer API, and the page, given the
codename in upper case, shows the genuine reply and counts the forgery without
rendering it. No request (URL, headers, or body: Firefox's WebDriver BiDi data
collectors give the bodies) carries the codename, a key or a text. At Safest no
page script runs: the server's codename in ``<noscript>`` goes with the tip, and
``POST /replies`` answers the replies decrypted by the server.

The driver is tests/js/firefox_conversation.mjs (tests/support_firefox.py).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.conversation.codename import fold_codename
from relay.conversation.derivation import ConversationKeys, reply_keys_from_fields
from relay.crypto.signing import SigningKey
from tests.support_conversation import (
    conversation_relay,
    keys_for,
    put_reply,
    sealed_reply,
    secrets_of,
    submission_meta,
)
from tests.support_firefox import conversation_spec, run_firefox_conversation
from tests.support_server import RelayServer

pytestmark = pytest.mark.slow  # one Firefox start, a tip and a reading per level: 10 to 40 s
BUNDLE = Path(__file__).resolve().parent.parent / "relay" / "web" / "static" / "dist" / "app.js"
GENUINE = "GENUINE-REPLY come to the station at noon"
FORGED = "FORGED-REPLY made without the auth key"
NOT_AUTHENTICATED = "could not be authenticated and were not shown: 1."


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    assert BUNDLE.is_file(), "the browser bundle is missing: run scripts/setup or scripts/build-js"
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    base = tmp_path_factory.mktemp("firefox-conversation") / "relay"
    settings = {"reply_ring_size": 8, "default_language": "en"}
    with conversation_relay(base, settings, api_key) as server:
        yield server


def converse(
    relay: RelayServer, api_key: SigningKey, level: str, tmp_path: Path, message: str
) -> tuple[dict[str, Any], ConversationKeys, dict[str, object]]:
    """One Firefox: the tip with the shown codename; once it is stored, a genuine
    reply in slot 1 and a forgery in slot 2; then the reading. The driver's
    result, the keys derived here, and the tip's ``submission.json``."""
    before = set(relay.blob_paths())
    found: dict[str, Any] = {}

    def put_replies(event: dict[str, Any], driver: subprocess.Popen[str]) -> None:
        if event["event"] != "codename":
            return
        keys = keys_for(relay, event["words"])
        fresh = [path for path in relay.blob_paths() if path not in before]
        assert len(fresh) == 1, fresh
        found["keys"], found["meta"] = keys, submission_meta(relay, fresh[0])
        put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, GENUINE))
        put_reply(relay, api_key, keys, 2, sealed_reply(relay, keys, 2, FORGED, auth_key=bytes(32)))
        assert driver.stdin is not None
        driver.stdin.write("continue\n")
        driver.stdin.flush()

    spec = conversation_spec(f"{relay.url}/?lang=en", level, tmp_path / "profile", message)
    result = run_firefox_conversation(spec, put_replies)
    return result, found["keys"], found["meta"]


def request_bytes(request: dict[str, Any]) -> bytes:
    """What a request showed the network: URL, headers and body."""
    body = base64.b64decode(request["body"]) if request["body"] else b""
    return request["url"].encode() + json.dumps(request["headers"]).encode() + body


@pytest.mark.parametrize("level", ["standard", "safer"])
def test_with_page_scripts_the_conversation_stays_in_firefox(
    level: str, relay: RelayServer, api_key: SigningKey, tmp_path: Path
) -> None:
    message = f"FIREFOX-TIP {level}: I need to leave"
    result, keys, meta = converse(relay, api_key, level, tmp_path, message)
    words = result["codename"]["words"]
    assert fold_codename(words).checked  # made in the browser: seven list words, a check word
    assert result["codename"]["name"] is None  # no form ever sends it
    assert meta["sealed_by"] == "browser"
    assert meta["conversation"] == keys.reply_keys().to_fields()  # Python and Firefox agree
    # Safer turns the JIT and WebAssembly off; Standard keeps them.
    assert result["webAssembly"] == ("undefined" if level == "safer" else "object")
    assert result["pageErrors"] == [] and result["blockedScripts"] == []

    shown = result["shown"]
    assert "Decrypted in your browser" in shown
    assert GENUINE in shown and "Reply 1, written on 2025-03-04" in shown
    assert NOT_AUTHENTICATED in shown
    assert "FORGED" not in result["html"]

    requests = result["requests"]
    assert [r["url"] for r in requests if not r["bodyCaptured"]] == []
    fetches = [r for r in requests if r["url"].endswith("/api/v1/replies/fetch")]
    assert fetches and all(r["hasBody"] for r in fetches)  # bodies were captured and read
    assert any(r["url"].endswith("/api/v1/replies/index") and r["hasBody"] for r in requests)
    assert not [r for r in requests if "/replies" in r["url"] and "/api/" not in r["url"]]
    secrets = secrets_of(keys, words.split())
    secrets += [words.upper().encode(), "%20".join(words.split()).encode()]
    texts = [b"GENUINE-REPLY", b"FORGED-REPLY", b"FIREFOX-TIP"]
    for request in requests:
        shown_to_network = request_bytes(request)
        leaked = [s[:12] for s in secrets + texts if s in shown_to_network]
        assert leaked == [], (request["method"], request["url"], leaked)


def test_at_safest_the_noscript_codename_goes_with_the_tip_and_the_server_decrypts(
    relay: RelayServer, api_key: SigningKey, tmp_path: Path
) -> None:
    result, keys, meta = converse(relay, api_key, "safest", tmp_path, "FIREFOX-TIP safest")
    assert result["blockedScripts"], "the page asked for no script, so nothing was blocked"
    # With JavaScript on (scripts blocked by URL), Firefox parses <noscript> as
    # text: the field exists only once <noscript> is rendered, as NoScript does.
    assert result["noscriptFieldBefore"] is False
    assert result["emulatedNoscript"] >= 1
    words = result["codename"]["words"]
    assert result["codename"]["name"] == "codename"
    assert fold_codename(words).checked
    assert result["afterTip"].endswith("/submit")  # the confirmation answers the POST itself
    assert meta["sealed_by"] == "server"
    # Sealed as the codename itself (the relay derives nothing for a tip); the
    # team's offline side derives the same reply keys from it.
    assert meta["conversation"]["codename_indices"] == list(fold_codename(words).indices)
    assert reply_keys_from_fields(meta["conversation"]).to_fields() == (
        keys.reply_keys().to_fields()
    )

    posts = {r["url"].split("?")[0].removeprefix(relay.url): r for r in result["requests"]}
    submitted = posts["/submit"]
    assert submitted["method"] == "POST" and submitted["bodyCaptured"]
    assert words.encode() in base64.b64decode(submitted["body"])  # the field went with the tip
    read = posts["/replies"]
    assert read["method"] == "POST" and read["bodyCaptured"]
    assert "+".join(words.upper().split()).encode() in base64.b64decode(read["body"])
    assert result["readUrl"].endswith("/replies?lang=en")
    shown = result["shown"]
    assert "Decrypted by the server" in shown
    assert GENUINE in shown and "Reply 1, written on 2025-03-04" in shown
    assert NOT_AUTHENTICATED in shown
    assert "FORGED" not in result["html"]
