"""OpenPGP reviewers end to end: real gpg homes, a real relay, real HTTP, stock age.

A relay with one age reviewer and one OpenPGP reviewer (an ed25519 + cv25519
key in a test gpg home; its passphrase reaches gpg through the loopback
pinentry). A no-JS tip is read by the age reviewer with stock ``age`` and by the
OpenPGP reviewer with ``tiprelay decrypt --gpg``, alone and from a pulled
bundle; a browser-style upload whose OpenPGP stanza is wrong is refused; the
relay's gpg sees file keys only and leaves nothing outside its data folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

import pytest
from PIL import Image

from relay.container import build_archive
from relay.crypto.encrypt import encrypt_bytes
from relay.crypto.format import Stanza, read_header
from relay.crypto.identities import X25519Identity
from relay.crypto.openpgp_keys import inspect_public_key
from relay.crypto.openpgp_recipient import STANZA_TYPE, OpenPGPRecipient, PublicKeyring
from relay.crypto.recipients import X25519Recipient
from relay.fingerprint import recipient_set_fingerprint
from tests.support_openpgp import (
    FixedStanza,
    GpgReviewer,
    add_openpgp_reviewer,
    gpg_reviewer_home,
    gpg_runs,
    install_gpg_shim,
    make_key,
    new_gpg_home,
    remove_gpg_home,
    run_gpg,
)
from tests.support_process import run
from tests.support_reviewer import (
    TIPRELAY,
    make_api_key,
    post_form,
    send,
    submit_form,
    upload_sealed,
)
from tests.support_server import RelayServer, new_relay

MESSAGE = "Встреча переносится. Marker 7f3a9c: the plaintext no gpg may see."
ATTACHMENT = ("plan.pdf", os.urandom(50_000) + b"7f3a9c")
MARKER = b"7f3a9c"


@dataclass
class TwoKindRelay:
    relay: RelayServer
    openpgp: GpgReviewer
    openpgp_api_key: Path
    gpg_log: Path
    home: Path  # the server's HOME


def tiprelay(
    *args: str | Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = run(
        [TIPRELAY, *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    with gpg_reviewer_home() as reviewer:
        yield reviewer


@pytest.fixture
def two_kind_relay(tmp_path: Path, gpg_reviewer: GpgReviewer) -> Iterator[TwoKindRelay]:
    """A started relay: ``reviewer`` (age) and ``olga`` (OpenPGP, with an API key).

    The server runs with its own HOME and a gpg on its PATH that records every run.
    """
    shim_env, log = install_gpg_shim(tmp_path / "server-gpg")
    home = tmp_path / "server-home"
    home.mkdir()
    relay = new_relay(tmp_path / "relay", env={**shim_env, "HOME": str(home)})
    _, api_line = make_api_key(tmp_path / "olga-api.key")
    add_openpgp_reviewer(relay.keys_dir, "olga", gpg_reviewer, api_line)
    relay.start()
    try:
        yield TwoKindRelay(relay, gpg_reviewer, tmp_path / "olga-api.key", log, home)
    finally:
        relay.stop()


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


def test_a_no_js_tip_opens_for_the_age_reviewer_with_stock_age_and_for_the_openpgp_one_with_gpg(
    two_kind_relay: TwoKindRelay, tmp_path: Path
) -> None:
    flow = two_kind_relay
    submit_form(flow.relay.url, MESSAGE, [ATTACHMENT])
    [blob] = flow.relay.blob_paths()
    header = blob.read_bytes()[:2000]
    assert f"-> tiprelay-openpgp {flow.openpgp.fingerprint}\n".encode() in header
    by_age = flow.relay.decrypt_with_stock_age(blob)

    out = tmp_path / "by-gpg.tar"
    tiprelay("decrypt", "--gpg", "-o", out, blob, env=flow.openpgp.environment())
    assert out.read_bytes() == by_age
    members = tar_members(by_age)
    assert members["message.txt"].decode() == MESSAGE
    assert members["files/plan.pdf"] == ATTACHMENT[1]


def test_the_openpgp_reviewer_pulls_a_bundle_and_decrypts_it_with_gpg(
    two_kind_relay: TwoKindRelay, tmp_path: Path
) -> None:
    flow = two_kind_relay
    submit_form(flow.relay.url, MESSAGE, [ATTACHMENT])
    age_key = X25519Recipient.parse(flow.relay.recipient)
    openpgp_key = inspect_public_key(flow.openpgp.public_key, "olga")
    keyring = PublicKeyring.temporary([openpgp_key])
    try:
        browser_sealed = encrypt_bytes(
            build_archive("sealed in a browser", [], language="ru", sealed_by="browser"),
            [age_key, OpenPGPRecipient(openpgp_key, keyring)],
        )
    finally:
        keyring.close()
    upload_sealed(flow.relay.url, browser_sealed)
    bundle = tmp_path / "bundle"
    pulled = tiprelay("pull", "--server", flow.relay.url, "--key", flow.openpgp_api_key,
                      "-o", bundle)
    assert "2 new submission(s)" in pulled.stdout
    recipients = json.loads((bundle / "recipients.json").read_text())["recipients"]
    assert f"openpgp:{flow.openpgp.fingerprint}" in recipients
    out = tmp_path / "cases"
    result = tiprelay("decrypt", "--gpg", bundle, "-o", out, env=flow.openpgp.environment())
    messages = sorted(p.read_text() for p in out.rglob("message.txt"))
    assert messages == sorted([MESSAGE, "sealed in a browser"]), result.stdout


# --- what the relay's gpg sees and leaves behind ---------------------------------


def test_the_relays_gpg_sees_only_file_keys_and_leaves_nothing_outside_its_data_folder(
    two_kind_relay: TwoKindRelay, tmp_path: Path
) -> None:
    flow = two_kind_relay
    for number in range(3):
        submit_form(flow.relay.url, f"{MESSAGE} {number}", [ATTACHMENT])
    runs = gpg_runs(flow.gpg_log)
    encryptions = [r for r in runs if "--encrypt" in r.args]
    assert len(encryptions) == 3
    # gpg dates what it encrypts: every tip carries the same moment (the relay's
    # start), none its own time of arrival.
    dates = set()
    for blob in flow.relay.blob_paths():
        with blob.open("rb") as source:
            [stanza] = [s for s in read_header(source).stanzas if s.type == STANZA_TYPE]
        listing = flow.openpgp.gpg("--list-packets", input_bytes=stanza.body).decode()
        dates.add(re.search(r"literal data packet:\s+mode b \(62\), created ([0-9]+)", listing)[1])
    assert len(dates) == 1, dates
    assert all(len(r.stdin) == 16 for r in encryptions)  # the file key, nothing else
    assert not any(MARKER in r.stdin or MARKER in r.stdout for r in runs)
    homes = {r.args[r.args.index("--homedir") + 1] for r in runs if "--homedir" in r.args}
    data_dir = str(flow.relay.data_dir)
    assert homes and all(home.startswith(data_dir + "/") for home in homes), homes
    # No secret key, no agent socket, nothing in the server's HOME or /run/user.
    [gpg_home] = (flow.relay.data_dir / "openpgp-keyring").iterdir()
    assert not any((gpg_home / "private-keys-v1.d").glob("*"))
    assert not list(gpg_home.glob("S.*"))
    assert list(flow.home.iterdir()) == []
    agents = run(["pgrep", "-af", "gpg-agent"], capture_output=True, text=True).stdout
    assert data_dir not in agents
    assert not Path(f"/run/user/{os.getuid()}/gnupg").exists() or not any(
        data_dir in p.read_text(errors="replace")
        for p in Path(f"/run/user/{os.getuid()}/gnupg").rglob("*")
        if p.is_file()
    )
    flow.relay.stop()
    assert not (flow.relay.data_dir / "openpgp-keyring").exists() or not any(
        (flow.relay.data_dir / "openpgp-keyring").iterdir()
    )


def test_decrypt_with_gpg_gives_gpg_the_stanza_only_and_never_the_plaintext(
    two_kind_relay: TwoKindRelay, tmp_path: Path
) -> None:
    flow = two_kind_relay
    submit_form(flow.relay.url, MESSAGE, [ATTACHMENT])
    [blob] = flow.relay.blob_paths()
    shim_env, log = install_gpg_shim(tmp_path / "reviewer-gpg")
    out = tmp_path / "tip.tar"
    tiprelay("decrypt", "--gpg", "-o", out, blob, env=flow.openpgp.environment(**shim_env))
    assert MARKER in out.read_bytes()
    runs = gpg_runs(log)
    decryptions = [r for r in runs if "--decrypt" in r.args]
    assert len(decryptions) == 1
    assert len(decryptions[0].stdout) == 16
    assert len(decryptions[0].stdin) < 1024
    assert not any(MARKER in r.stdin or MARKER in r.stdout for r in runs)


# --- keys the relay refuses -------------------------------------------------------


@dataclass(frozen=True)
class RefusedKey:
    armored: bytes
    fingerprint: str
    message: str  # what the refusal must say


@pytest.fixture(scope="module")
def refused_keys() -> Iterator[dict[str, RefusedKey]]:
    """One key of each kind the relay must refuse, made by the real gpg."""
    home = new_gpg_home()
    try:
        keys: dict[str, RefusedKey] = {}

        def export(kind: str, fingerprint: str, message: str, *, secret: bool = False) -> None:
            command = "--export-secret-keys" if secret else "--export"
            armored = run_gpg(home, command, "--armor", fingerprint)
            keys[kind] = RefusedKey(armored, fingerprint, message)

        expired = make_key(home, "expired", expire="1d", faked_time="20200101T000000")
        export("expired", expired, "has expired")
        revoked = make_key(home, "revoked")
        certificate = (home / "openpgp-revocs.d" / f"{revoked}.rev").read_text()
        run_gpg(home, "--import", input_bytes=certificate.replace(":-----", "-----").encode())
        export("revoked", revoked, "is revoked")
        export("sign-only", make_key(home, "signer", "sign-only"), "no usable encryption subkey")
        export("rsa2048", make_key(home, "small", "rsa2048"), "RSA-2048, a weak algorithm")
        export("dsa", make_key(home, "old", "dsa"), "DSA, a weak algorithm")
        export("secp256k1", make_key(home, "bitcoin", "secp256k1"),
               "curve secp256k1, which browsers' OpenPGP.js cannot use")
        export("secret", make_key(home, "secret"), "SECRET", secret=True)
        photo = make_key(home, "photo")
        picture = io.BytesIO()
        Image.new("RGB", (8, 8)).save(picture, "JPEG")
        (home / "me.jpg").write_bytes(picture.getvalue())
        run_gpg(home, "--command-fd", "0", "--edit-key", photo,
                input_bytes=f"addphoto\n{home / 'me.jpg'}\nsave\n".encode())
        export("photo", photo, "carries a photo ID")
        yield keys
    finally:
        remove_gpg_home(home)


@pytest.mark.parametrize(
    "kind",
    ["revoked", "sign-only", "rsa2048", "dsa", "secp256k1", "secret", "photo"],
)
def test_each_refused_kind_of_key_stops_the_relay_and_reviewer_add_with_its_own_message(
    kind: str, refused_keys: dict[str, RefusedKey], tmp_path: Path
) -> None:
    key = refused_keys[kind]
    relay = new_relay(tmp_path / "relay")
    key_file = relay.keys_dir / f"{key.fingerprint}.asc"
    key_file.write_bytes(key.armored)
    (relay.keys_dir / "olga.toml").write_text(
        f'name = "olga"\nopenpgp_fingerprint = "{key.fingerprint}"\n'
    )
    with pytest.raises(RuntimeError) as refused:
        relay.start()
    log = str(refused.value)
    expected = "OpenPGP private key" if kind == "secret" else key.message
    assert expected in log and str(key_file) in log, log
    assert relay.blob_paths() == []

    given = tmp_path / "given.asc"
    given.write_bytes(key.armored)
    fresh_keys = tmp_path / "fresh-keys"
    added = tiprelay("reviewer", "add", "olga", "--openpgp-key", given, "--keys-dir", fresh_keys,
                     check=False)
    assert added.returncode != 0
    assert key.message in added.stderr, added.stderr
    assert not list(fresh_keys.glob("*.toml")) and not list(fresh_keys.glob("*.asc"))


def test_reviewer_add_writes_an_openpgp_reviewer_the_relay_then_encrypts_to(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    relay = new_relay(tmp_path / "relay")
    given = tmp_path / "olga.asc"
    given.write_bytes(gpg_reviewer.public_key)
    tiprelay("reviewer", "add", "olga", "--openpgp-key", given, "--keys-dir", relay.keys_dir)
    key_file = relay.keys_dir / f"{gpg_reviewer.fingerprint}.asc"
    assert key_file.read_bytes() == gpg_reviewer.public_key
    listed = tiprelay("reviewer", "list", "--keys-dir", relay.keys_dir).stdout
    assert f"olga\topenpgp:{gpg_reviewer.fingerprint}" in listed
    again = tiprelay("reviewer", "add", "olga2", "--openpgp-key", given, "--keys-dir",
                     relay.keys_dir, check=False)
    assert again.returncode != 0 and "have the same OpenPGP key" in again.stderr
    relay.start()
    try:
        answer = json.loads(urlopen(relay.url + "/api/v1/recipients").read())
        assert answer["recipients"] == [f"openpgp:{gpg_reviewer.fingerprint}", relay.recipient]
        assert answer["openpgp_keys"] == {
            gpg_reviewer.fingerprint: gpg_reviewer.public_key.decode()
        }
        assert answer["fingerprint"] == recipient_set_fingerprint(answer["recipients"])
    finally:
        relay.stop()
    tiprelay("reviewer", "remove", "olga", "--keys-dir", relay.keys_dir)
    assert not key_file.exists()


# --- browser uploads with a wrong OpenPGP stanza ------------------------------------


def test_an_upload_whose_openpgp_stanza_is_wrong_is_refused_and_nothing_is_stored(
    two_kind_relay: TwoKindRelay,
) -> None:
    flow = two_kind_relay
    age_key = X25519Recipient.parse(flow.relay.recipient)
    olga = inspect_public_key(flow.openpgp.public_key, "olga")
    plaintext = build_archive("x", [], language="ru", sealed_by="browser")
    with gpg_reviewer_home("stranger") as stranger_home:
        stranger = inspect_public_key(stranger_home.public_key, "stranger")
        keyring = PublicKeyring.temporary([olga, stranger])
        try:
            to_olga = OpenPGPRecipient(olga, keyring)
            to_stranger = OpenPGPRecipient(stranger, keyring)
            valid = encrypt_bytes(plaintext, [age_key, to_olga])
            stranger_body = to_stranger.wrap(bytes(16))[0].body
            readdressed = Stanza(STANZA_TYPE, (olga.fingerprint,), stranger_body)
            garbage = Stanza(STANZA_TYPE, (olga.fingerprint,), os.urandom(150))
            cases = {
                # The stranger's message under olga's fingerprint: the PKESK names another key.
                "addressed to another key": encrypt_bytes(
                    plaintext, [age_key, FixedStanza(readdressed)]
                ),
                "another reviewer's fingerprint": encrypt_bytes(plaintext, [age_key, to_stranger]),
                "missing": encrypt_bytes(
                    plaintext, [age_key, X25519Identity.generate().recipient]
                ),
                "garbage": encrypt_bytes(plaintext, [age_key, FixedStanza(garbage)]),
                "twice": encrypt_bytes(plaintext, [age_key, to_olga, to_olga]),
                "only the OpenPGP stanza": encrypt_bytes(plaintext, [to_olga]),
            }
        finally:
            keyring.close()
    for case, data in cases.items():
        answer = send(flow.relay.url, "POST", "/api/v1/uploads",
                      {"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))})
        assert answer.status == 201, case
        patched = send(
            flow.relay.url, "PATCH", answer.headers["Location"],
            {"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
             "Content-Type": "application/offset+octet-stream"},
            data,
        )
        assert patched.status == 422, (case, patched.status, patched.body[:300])
        error = json.loads(patched.body)["error"]
        assert error.startswith("The upload"), (case, error)
        assert flow.relay.blob_paths() == [], case
    assert not any("--decrypt" in r.args for r in gpg_runs(flow.gpg_log))
    upload_sealed(flow.relay.url, valid)
    assert len(flow.relay.blob_paths()) == 1


def test_reviewer_add_strips_who_vouched_for_the_key_and_shows_what_stays_public(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    friend = make_key(gpg_reviewer.home, "friend")
    gpg_reviewer.gpg("--local-user", friend, "--quick-sign-key", gpg_reviewer.fingerprint)
    given = tmp_path / "olga.asc"
    given.write_bytes(gpg_reviewer.gpg("--export", "--armor", gpg_reviewer.fingerprint))
    friend_key_id = friend[-16:]
    assert friend_key_id.encode() in run_gpg(gpg_reviewer.home, "--list-packets",
                                             input_bytes=given.read_bytes())
    keys_dir = tmp_path / "keys"
    added = tiprelay("reviewer", "add", "olga", "--openpgp-key", given, "--keys-dir", keys_dir)
    assert "olga <olga@example.org>" in added.stdout
    assert "can read this key and its user IDs" in added.stdout.replace("\n", " ")
    stored = (keys_dir / f"{gpg_reviewer.fingerprint}.asc").read_bytes()
    packets = run_gpg(gpg_reviewer.home, "--list-packets", input_bytes=stored)
    assert friend_key_id.encode() not in packets
    assert inspect_public_key(stored, "stored").fingerprint == gpg_reviewer.fingerprint


def log_lines(relay: RelayServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in relay.log_text().splitlines()]


def events(relay: RelayServer, event: str) -> list[dict[str, object]]:
    return [line for line in log_lines(relay) if line.get("event") == event]


def daily_total(relay: RelayServer, reason: str) -> int:
    return sum(int(str(line["count"])) for line in events(relay, "activity.daily")
               if line.get("reason") == reason)


def stanza_types(blob: Path) -> list[str]:
    with blob.open("rb") as file:
        return [stanza.type for stanza in read_header(file).stanzas]


def page_recipients(relay: RelayServer) -> list[str] | None:
    """The #recipients block of the form's page (None: no browser sealing offered)."""
    page = send(relay.url, "GET", "/?lang=en").body.decode()
    found = re.search(r'<script type="application/json" id="recipients">(.*?)</script>', page)
    return None if found is None else list(json.loads(found.group(1))["recipients"])


def api_recipients(relay: RelayServer) -> list[str]:
    return list(send(relay.url, "GET", "/api/v1/recipients").json()["recipients"])  # type: ignore[index]


def add_key_file(relay: RelayServer, name: str, fingerprint: str, armored: bytes) -> Path:
    key_file = relay.keys_dir / f"{fingerprint}.asc"
    key_file.write_bytes(armored)
    (relay.keys_dir / f"{name}.toml").write_text(
        f'name = "{name}"\nopenpgp_fingerprint = "{fingerprint}"\n'
    )
    return key_file


def test_an_expired_key_leaves_its_reviewer_out_of_the_tips_loudly_and_alone_stops_the_relay(
    refused_keys: dict[str, RefusedKey], tmp_path: Path
) -> None:
    key = refused_keys["expired"]
    relay = new_relay(tmp_path / "relay")
    key_file = add_key_file(relay, "olga", key.fingerprint, key.armored)
    relay.start()
    try:
        [expired] = events(relay, "keyring.reviewer_key_expired")
        assert expired == {"event": "keyring.reviewer_key_expired", "level": "error",
                           "logger": "relay.server.app", "reviewer": "olga",
                           "fingerprint": key.fingerprint, "day": "2020-01-02"}
        submit_form(relay.url, MESSAGE)
        [blob] = relay.blob_paths()
        assert stanza_types(blob) == ["X25519"]
        assert MESSAGE.encode() in relay.decrypt_with_stock_age(blob)
        assert api_recipients(relay) == page_recipients(relay) == [relay.recipient]
    finally:
        relay.stop()

    # Alone, it leaves nobody to seal to: the relay does not start, and says why.
    (relay.keys_dir / "reviewer.toml").unlink()
    with pytest.raises(RuntimeError) as refused:
        relay.start()
    assert "has expired" in str(refused.value) and str(key_file) in str(refused.value)
    # And reviewer add refuses it.
    given = tmp_path / "given.asc"
    given.write_bytes(key.armored)
    added = tiprelay("reviewer", "add", "olga", "--openpgp-key", given, "--keys-dir",
                     tmp_path / "fresh-keys", check=False)
    assert added.returncode != 0 and "has expired" in added.stderr, added.stderr


def test_the_operator_is_warned_from_14_days_before_a_key_expires_at_start_and_reload(
    tmp_path: Path,
) -> None:
    home = new_gpg_home()
    try:
        soon = make_key(home, "soon", expire="10d")
        later = make_key(home, "later", expire="20d")
        relay = new_relay(tmp_path / "relay")
        armored = {f: run_gpg(home, "--export", "--armor", f) for f in (soon, later)}
        for name, fingerprint in (("soon", soon), ("later", later)):
            add_key_file(relay, name, fingerprint, armored[fingerprint])
        expires = inspect_public_key(armored[soon], "soon").expires
        assert expires is not None
        relay.start()
        try:
            [warning] = events(relay, "keyring.reviewer_key_expires_soon")
            assert warning["level"] == "warning"
            assert (warning["reviewer"], warning["fingerprint"], warning["days_left"]) == (
                "soon", soon, 9)
            assert warning["day"] == time.strftime("%Y-%m-%d", time.gmtime(expires))
            relay.reload_keys()
            deadline = time.monotonic() + 30
            while len(events(relay, "keyring.reviewer_key_expires_soon")) < 2:
                assert time.monotonic() < deadline, relay.log_text()
                time.sleep(0.1)
            assert events(relay, "keyring.reviewer_key_expired") == []
            assert not [r for r in events(relay, "keyring.reviewer_key_expires_soon")
                        if r["reviewer"] != "soon"]
        finally:
            relay.stop()
    finally:
        remove_gpg_home(home)


def test_a_key_that_expires_while_the_relay_runs_drops_out_of_the_tips_at_that_moment(
    tmp_path: Path,
) -> None:
    """Two relays share one key that lives 30 s: one also has an age reviewer, and
    keeps taking tips; for the other it is the only key, and its tip line goes dark.
    Neither writes a line per tip: daily totals only."""
    home = new_gpg_home()
    try:
        fingerprint = make_key(home, "brief", expire="seconds=30")
        armored = run_gpg(home, "--export", "--armor", fingerprint)
        expires = inspect_public_key(armored, "brief").expires
        assert expires is not None
        both, alone = new_relay(tmp_path / "both"), new_relay(tmp_path / "alone")
        for relay in (both, alone):
            add_key_file(relay, "brief", fingerprint, armored)
        (alone.keys_dir / "reviewer.toml").unlink()
        both.start()
        alone.start()
        try:
            for relay in (both, alone):
                [soon] = events(relay, "keyring.reviewer_key_expires_soon")
                assert (soon["reviewer"], soon["fingerprint"], soon["days_left"]) == (
                    "brief", fingerprint, 0)
            submit_form(both.url, "before the key expires")
            [before] = both.blob_paths()
            assert sorted(stanza_types(before)) == sorted(["X25519", STANZA_TYPE])
            assert set(api_recipients(both)) == {both.recipient, f"openpgp:{fingerprint}"}

            time.sleep(max(0.0, expires - time.time()) + 0.5)
            submit_form(both.url, "after the key expired")
            [after] = [blob for blob in both.blob_paths() if blob != before]
            assert stanza_types(after) == ["X25519"]
            assert b"after the key expired" in both.decrypt_with_stock_age(after)
            assert api_recipients(both) == page_recipients(both) == [both.recipient]

            dark = post_form(alone.url, "nobody can read this", path="/submit?lang=en")
            assert dark.status == 503
            assert b"cannot encrypt messages for our team" in dark.body
            assert alone.blob_paths() == [] and page_recipients(alone) is None
            assert api_recipients(alone) == []
            # The key watch wakes when the key expires, whatever the sources do.
            deadline = time.monotonic() + 30
            while not (events(alone, "keyring.no_usable_reviewer_key")
                       and events(both, "keyring.reviewer_key_expired")):
                assert time.monotonic() < deadline, both.log_text() + alone.log_text()
                time.sleep(0.2)
            assert events(both, "keyring.no_usable_reviewer_key") == []
            [expired] = events(both, "keyring.reviewer_key_expired")
            assert (expired["reviewer"], expired["fingerprint"]) == ("brief", fingerprint)
        finally:
            both.stop()
            alone.stop()
        assert daily_total(both, "submission_stored_server_sealed") == 2
        assert daily_total(alone, "submission_refused_no_usable_key") == 1
        for relay in (both, alone):
            text = relay.log_text()
            assert "openpgp_wrap_failed" not in text and "after the key" not in text
            assert not [line for line in log_lines(relay) if "submission" in str(line["event"])]
    finally:
        remove_gpg_home(home)


def test_a_second_relay_on_the_same_data_folder_leaves_the_first_ones_gpg_home_alone(
    two_kind_relay: TwoKindRelay,
) -> None:
    flow = two_kind_relay
    second = run(
        [TIPRELAY, "serve", "--config", str(flow.relay.config_path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )
    assert second.returncode != 0
    assert "another tiprelay process" in second.stdout + second.stderr
    submit_form(flow.relay.url, MESSAGE)  # the first relay still wraps for olga
    assert len(flow.relay.blob_paths()) == 1


def test_gpg_homes_a_killed_relay_left_are_removed_at_the_next_start(
    tmp_path: Path, gpg_reviewer: GpgReviewer
) -> None:
    relay = new_relay(tmp_path / "relay")
    add_openpgp_reviewer(relay.keys_dir, "olga", gpg_reviewer)
    relay.start()
    relay.kill()
    [left] = (relay.data_dir / "openpgp-keyring").iterdir()
    relay.start()
    try:
        homes = list((relay.data_dir / "openpgp-keyring").iterdir())
        assert left not in homes and len(homes) == 1
        submit_form(relay.url, MESSAGE)
    finally:
        relay.stop()
    assert not (relay.data_dir / "openpgp-keyring").exists()


def test_a_key_placed_by_hand_is_published_without_who_vouched_for_it(
    gpg_reviewer: GpgReviewer, tmp_path: Path
) -> None:
    friend = make_key(gpg_reviewer.home, "friend")
    gpg_reviewer.gpg("--local-user", friend, "--quick-sign-key", gpg_reviewer.fingerprint)
    signed = gpg_reviewer.gpg("--export", "--armor", gpg_reviewer.fingerprint)
    relay = new_relay(tmp_path / "relay")
    add_openpgp_reviewer(relay.keys_dir, "olga", GpgReviewer(
        gpg_reviewer.home, gpg_reviewer.fingerprint, b"Comment: around the key\n" + signed))
    relay.start()
    try:
        served = json.loads(urlopen(relay.url + "/api/v1/recipients").read())["openpgp_keys"]
    finally:
        relay.stop()
    published = served[gpg_reviewer.fingerprint].encode()
    assert published.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    packets = run_gpg(gpg_reviewer.home, "--list-packets", input_bytes=published)
    assert friend[-16:].encode() not in packets
    assert inspect_public_key(published, "served").fingerprint == gpg_reviewer.fingerprint
