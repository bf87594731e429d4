"""The no-JavaScript conversation pages over real HTTP (issue 9): the codename on the
form, a tip that opens a conversation, reading replies decrypted by the server,
downloads, forgeries, delete after reading, a follow-up, and what stays behind.

A real ``tiprelay serve`` on 127.0.0.1 with a conversation salt; the client is
a plain form client (``http.client``): what a browser with JavaScript off sends.
Replies are put into their slots through the signed reviewer API.
"""

from __future__ import annotations

import html
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.conversation.codename import Codename, fold_codename, generate_codename
from relay.conversation.derivation import reply_keys_from_fields
from relay.conversation_salt import load_conversation_salt
from relay.crypto.padding import padme_length
from relay.crypto.signing import SigningKey
from relay.server.codenames import CODENAME_CHECK_FAILED, require_typed_codename
from relay.server.page_padding import REPLY_PAGE_FLOOR_BYTES
from relay.server.problems import SourceProblem
from tests.support_conversation import (
    NOSCRIPT_CODENAME,
    conversation_relay,
    files_containing,
    keys_for,
    put_reply,
    sealed_reply,
    secrets_of,
    submission_meta,
)
from tests.support_forms import text_fields_multipart
from tests.support_reviewer import Answer, send
from tests.support_server import RelayServer, new_relay

RING_SLOTS = 8


@pytest.fixture(scope="module")
def api_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, api_key: SigningKey) -> Iterator[RelayServer]:
    base = tmp_path_factory.mktemp("conversation-pages") / "relay"
    settings = {"reply_ring_size": RING_SLOTS, "max_reply_bytes": 1024 * 1024}
    with conversation_relay(base, settings, api_key) as server:
        yield server


def get_form(relay: RelayServer) -> Answer:
    answer = send(relay.url, "GET", "/?lang=en")
    assert answer.status == 200
    return answer


def offered_codename(page: Answer) -> str:
    match = NOSCRIPT_CODENAME.search(page.body.decode())
    assert match is not None, "no codename field inside <noscript>"
    return match.group(1)




def submit(relay: RelayServer, fields: list[tuple[str, str]]) -> Answer:
    headers, body = text_fields_multipart(fields)
    return send(relay.url, "POST", "/submit", headers, body)


def post_form(relay: RelayServer, path: str, fields: dict[str, str], lang: str = "en") -> Answer:
    body = urllib.parse.urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return send(relay.url, "POST", f"{path}?lang={lang}", headers, body)


def new_blob(relay: RelayServer, before: set[Path]) -> Path:
    fresh = [path for path in relay.blob_paths() if path not in before]
    assert len(fresh) == 1, fresh
    return fresh[0]


def hidden_codename(page: str, form_id: str) -> str:
    form = page[page.index(f'id="{form_id}"') :]
    match = re.search(
        r'<input type="hidden" name="codename" value="([^"]*)" autocomplete="off">', form
    )
    assert match is not None
    return html.unescape(match.group(1))


def test_the_form_offers_a_fresh_codename_without_javascript_only(relay: RelayServer) -> None:
    first, second = get_form(relay), get_form(relay)
    words = offered_codename(first)
    assert len(words.split()) == 8
    assert fold_codename(words).checked  # seven list words and their check word
    assert words != offered_codename(second)
    assert first.headers["Cache-Control"] == "no-store"
    page = first.body.decode()
    assert "These eight words are your codename" in page
    shown = page[page.index('<ol class="codename-words"') :]
    shown = shown[: shown.index("</ol>")]
    assert re.findall(r"<li>([a-z-]+)</li>", shown) == words.split()  # one item a word
    assert "in Latin letters" in page
    assert 'autocomplete="off"' in page[page.index("<noscript>") : page.index("</noscript>")]
    assert 'action="/replies?lang=en"' in page  # the read-replies form, POST only


def test_without_a_salt_no_codename_is_offered_or_accepted(tmp_path: Path) -> None:
    server = new_relay(tmp_path / "relay")
    server.start()
    try:
        page = get_form(server).body.decode()
        assert 'name="codename"' not in page
        refused = submit(
            server, [("lang", "en"), ("codename", str(generate_codename())), ("message", "hi")]
        )
        assert refused.status == 403
        assert b"Replies are not set up" in refused.body
        assert server.blob_paths() == []
    finally:
        server.stop()


def test_a_typed_codename_that_is_not_seven_list_words_gets_its_own_message(
    relay: RelayServer,
) -> None:
    words = offered_codename(get_form(relay)).split()
    wrong_word = " ".join([*words[:2], "notaword", *words[3:]])
    answer = post_form(relay, "/replies", {"codename": wrong_word})
    assert answer.status == 400
    assert b"Word 3 of what you typed" in answer.body
    short = post_form(relay, "/replies", {"codename": " ".join(words[:5])})
    assert short.status == 400
    assert b"has 5 words from the list" in short.body
    before = set(relay.blob_paths())
    refused = submit(relay, [("lang", "en"), ("codename", wrong_word), ("message", "hello")])
    assert refused.status == 400
    assert b"Word 3 of what you typed" in refused.body
    assert set(relay.blob_paths()) == before


def test_list_words_in_the_wrong_order_are_caught_before_any_derivation(
    relay: RelayServer,
) -> None:
    swapped = "abacus abdomen abdominal abide abiding zoom ability splurge"
    for path in ("/replies", "/replies/delete"):
        answer = post_form(relay, path, {"codename": swapped, "slot": "1"}, "ru")
        assert answer.status == 400
        page = answer.body.decode()
        assert "Проверьте порядок и написание слов" in page
        assert "Ответов пока нет" not in page
    before = set(relay.blob_paths())
    refused = submit(relay, [("lang", "uk"), ("codename", swapped), ("message", "hello")])
    assert refused.status == 400
    assert "Перевірте порядок і написання слів" in refused.body.decode()
    assert set(relay.blob_paths()) == before


def test_the_check_is_made_from_the_words_before_anything_is_derived() -> None:
    # The pages call read_typed_codename / require_typed_codename before they
    # take a derivation slot; neither needs the relay, its salt or its store.
    swapped = "abacus abdomen abdominal abide abiding zoom ability splurge"
    written = str(Codename((0, 1, 2, 3, 4, 5, 7775)))
    assert written == swapped.replace("zoom ability", "ability zoom")
    with pytest.raises(SourceProblem) as caught:
        require_typed_codename(swapped)
    assert caught.value.problem.title == CODENAME_CHECK_FAILED.title


def test_the_no_replies_page_says_whether_the_codename_was_checked(relay: RelayServer) -> None:
    codename = generate_codename()
    checked = post_form(relay, "/replies", {"codename": str(codename)}).body.decode()
    assert "Your codename is typed correctly" in checked
    assert "goes to the same conversation" in checked
    old = post_form(relay, "/replies", {"codename": " ".join(codename.words)}).body.decode()
    assert "This codename has seven words" in old
    assert "a mistyped codename starts a new conversation" in old
    assert hidden_codename(old, "follow-up-form") == str(codename)  # now with its check word


def test_a_one_off_tip_carries_no_conversation(relay: RelayServer) -> None:
    before = set(relay.blob_paths())
    answer = submit(relay, [("lang", "en"), ("codename", ""), ("message", "one off")])
    assert answer.status == 303
    assert "conversation" not in submission_meta(relay, new_blob(relay, before))


@pytest.mark.parametrize("message", ["short", "Привет, мне нужна помощь. " * 40])
def test_a_one_off_tip_and_a_conversation_tip_are_blobs_of_one_size(
    relay: RelayServer, message: str
) -> None:
    sizes = []
    for codename in ("", offered_codename(get_form(relay))):
        before = set(relay.blob_paths())
        answer = submit(relay, [("lang", "en"), ("codename", codename), ("message", message)])
        # A tip with a codename is answered by the confirmation itself (200), one
        # without by a redirect to it (303).
        assert answer.status == (200 if codename else 303)
        sizes.append(new_blob(relay, before).stat().st_size)
    assert sizes[0] == sizes[1], sizes


def test_no_js_round_trip_replies_forgeries_download_follow_up_delete(
    relay: RelayServer, api_key: SigningKey
) -> None:
    words = offered_codename(get_form(relay))
    before = set(relay.blob_paths())
    answer = submit(relay, [("lang", "en"), ("codename", words), ("message", "I need help")])
    # No redirect: the confirmation shows the codename once more, and it must
    # never go into a URL.
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["Cache-Control"] == "no-store"
    received = answer.body.decode()
    assert "Your message has been received" in received and "New Identity" in received
    shown = received[received.index('id="sent-codename"') :]
    assert re.findall(r"<li>([a-z-]+)</li>", shown[: shown.index("</ol>")]) == words.split()
    keys = keys_for(relay, words)
    meta = submission_meta(relay, new_blob(relay, before))
    # Sealed without a derivation: the codename's indices and the relay's salt,
    # from which the team's offline machine derives the same reply keys.
    salt = load_conversation_salt(relay.keys_dir)
    assert salt is not None
    assert meta["conversation"] == {
        "kdf": "v1",
        "codename_indices": list(fold_codename(words).indices),
        "relay_salt": salt.hex(),
    }
    assert reply_keys_from_fields(meta["conversation"]).to_fields() == (
        keys.reply_keys().to_fields()
    )

    link_text = '<a href="https://evil.example/">click</a> https://evil.example/ <b>x</b>'
    put_reply(relay, api_key, keys, 1, sealed_reply(
        relay, keys, 1, "GENUINE-ONE go to the station. " + link_text,
        [("route map.txt", b"MAP-BYTES")],
    ))  # fmt: skip
    put_reply(relay, api_key, keys, 3, sealed_reply(relay, keys, 3, "GENUINE-THREE"))
    # Forgeries: a MAC made without the auth key, a genuine reply moved to
    # another slot, a genuine reply of another conversation (to this source).
    put_reply(relay, api_key, keys, 2, sealed_reply(
        relay, keys, 2, "FORGED-NO-AUTH-KEY", auth_key=bytes(32)
    ))  # fmt: skip
    put_reply(relay, api_key, keys, 5, sealed_reply(relay, keys, 4, "FORGED-MOVED-SLOT"))
    other = keys_for(relay, str(generate_codename()))
    put_reply(relay, api_key, keys, 6, sealed_reply(
        relay, keys, 6, "FORGED-OTHER-CONVERSATION",
        auth_key=other.auth_key, conversation_id=other.conversation_id,
    ))  # fmt: skip

    typed = "  " + "   ".join(word.upper() for word in words.split()) + "  "
    started = time.monotonic()
    page_answer = post_form(relay, "/replies", {"codename": typed})
    print(f"\nno-JS reply page with 5 filled slots: {time.monotonic() - started:.3f} s")
    assert page_answer.status == 200, page_answer.body[:500]
    assert page_answer.headers["Cache-Control"] == "no-store"
    page = page_answer.body.decode()
    assert "Decrypted by the server" in page
    assert page.index("GENUINE-ONE") < page.index("GENUINE-THREE")  # ordered by n
    assert "Reply 1, written on 2025-03-04" in page
    assert "Missing here: 1 earlier replies" in page  # the gap before reply 3
    assert "could not be authenticated and were not shown: 3." in page
    assert "FORGED" not in page
    assert html.escape(link_text, quote=False) in page.replace("&#34;", '"')
    assert '<a href="https://evil' not in page and "<b>x</b>" not in page
    assert hidden_codename(page, "follow-up-form") == words  # re-sent, folded

    download = post_form(
        relay, "/replies/attachment", {"codename": words, "slot": "1", "name": "route map.txt"}
    )
    assert download.status == 200
    assert download.body == b"MAP-BYTES"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    forged_file = post_form(
        relay, "/replies/attachment", {"codename": words, "slot": "2", "name": "x"}
    )
    assert forged_file.status == 404

    before = set(relay.blob_paths())
    follow_up = submit(
        relay,
        [("lang", "en"), ("codename", hidden_codename(page, "follow-up-form")),
         ("message", "FOLLOW-UP thank you")],
    )  # fmt: skip
    assert follow_up.status == 200
    follow_up_meta = submission_meta(relay, new_blob(relay, before))
    assert follow_up_meta["conversation"] == meta["conversation"]

    after_delete = post_form(relay, "/replies/delete", {"codename": words, "slot": "1"})
    assert after_delete.status == 200
    remaining = after_delete.body.decode()
    assert "The reply was deleted." in remaining
    assert "GENUINE-ONE" not in remaining and "GENUINE-THREE" in remaining
    wrong_token = post_form(
        relay, "/replies/delete", {"codename": str(generate_codename()), "slot": "3"}
    )
    assert "GENUINE-THREE" in post_form(relay, "/replies", {"codename": words}).body.decode()
    assert wrong_token.status == 200

    secrets = secrets_of(keys, words.split())
    texts = [
        b"GENUINE-ONE",
        b"GENUINE-THREE",
        b"FORGED-",
        b"MAP-BYTES",
        b"FOLLOW-UP",
        b"I need help",
    ]
    for folder in (relay.data_dir, relay.tmp_dir):
        assert files_containing(folder, secrets + texts) == []
    log = relay.log_text().encode()
    assert [s[:12] for s in secrets + texts if s in log] == []


def test_a_wrong_codename_and_one_without_replies_look_alike(relay: RelayServer) -> None:
    unused = post_form(relay, "/replies", {"codename": str(generate_codename())})
    assert unused.status == 200
    words = offered_codename(get_form(relay))
    submit(relay, [("lang", "en"), ("codename", words), ("message", "no replies yet")])
    fresh = post_form(relay, "/replies", {"codename": words})

    def shape(answer: Answer) -> str:
        unpadded = re.sub(r"\n<!-- *-->\n$", "", answer.body.decode())
        return re.sub(r'value="[a-z\- ]+"', 'value=""', unpadded)

    assert "No replies yet." in fresh.body.decode()
    assert "typed correctly" in unused.body.decode()
    assert shape(unused) == shape(fresh)
    assert len(unused.body) == len(fresh.body) == REPLY_PAGE_FLOOR_BYTES


def wire_size(answer: Answer) -> tuple[int, int, str]:
    """A page's bytes as a network observer could count them (pages are never compressed)."""
    assert answer.headers.get("Content-Encoding") is None
    return len(answer.body), int(answer.headers["Content-Length"]), answer.headers["Content-Type"]


def test_a_reply_page_has_one_size_whether_replies_exist_or_not(
    relay: RelayServer, api_key: SigningKey
) -> None:
    """The bytes on the wire of every page a reader of replies gets, in two languages:
    none, one and several short replies, a forgery, after a delete, and refusals."""
    words = str(generate_codename())
    keys = keys_for(relay, words)
    seen: dict[str, tuple[int, int, str]] = {}

    def read(label: str) -> None:
        for lang in ("en", "ru"):
            answer = post_form(relay, "/replies", {"codename": words}, lang)
            assert answer.status == 200
            seen[f"{label} ({lang})"] = wire_size(answer)

    read("no reply")
    put_reply(relay, api_key, keys, 1, sealed_reply(relay, keys, 1, "Come to the station at noon."))
    one = post_form(relay, "/replies", {"codename": words}).body.decode()
    assert "Come to the station at noon." in one and "No replies yet" not in one
    read("one reply")
    put_reply(relay, api_key, keys, 2, sealed_reply(
        relay, keys, 2, "And bring this.", [("map.txt", b"MAP")]
    ))  # fmt: skip
    put_reply(relay, api_key, keys, 3, sealed_reply(relay, keys, 3, "x", auth_key=bytes(32)))
    read("two replies, a file and a forgery")
    deleted = post_form(relay, "/replies/delete", {"codename": words, "slot": "1"})
    assert "The reply was deleted." in deleted.body.decode()
    others = {
        "after a delete": deleted,
        "codename of 2 words": post_form(relay, "/replies", {"codename": "abandon ability"}),
        "unknown word": post_form(relay, "/replies", {"codename": "x " * 6 + "x"}),
        "bad slot": post_form(relay, "/replies/delete", {"codename": words, "slot": "99"}),
        "file gone": post_form(
            relay, "/replies/attachment", {"codename": words, "slot": "1", "name": "x"}
        ),
        "GET": send(relay.url, "GET", "/replies?lang=ru"),
    }
    assert others["codename of 2 words"].status == 400 and others["GET"].status == 405
    seen |= {label: wire_size(answer) for label, answer in others.items()}
    floor = (REPLY_PAGE_FLOOR_BYTES, REPLY_PAGE_FLOOR_BYTES, "text/html; charset=utf-8")
    assert set(seen.values()) == {floor}, seen

    # A long reply moves the page to a larger size, Padmé-rounded.
    put_reply(relay, api_key, keys, 4, sealed_reply(relay, keys, 4, "long " * 8000))
    long_page = post_form(relay, "/replies", {"codename": words}).body
    assert len(long_page) > REPLY_PAGE_FLOOR_BYTES
    assert len(long_page) == padme_length(len(long_page))
    assert long_page.endswith(b" -->\n") and b"</html>\n<!--" in long_page
