"""The digest's parts without a network: its fixed size, the schedule, the loop, the
arrival counter, the channels file and what sending logs (relay.notify)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from relay.config import load_config
from relay.crypto.openpgp_keys import minimal_public_key
from relay.crypto.openpgp_recipient import PublicKeyring
from relay.errors import ConfigError
from relay.keyring import load_keyring
from relay.notify.channels import load_channels
from relay.notify.digest import DIGEST_LENGTH, MAX_COUNT, Digest, render
from relay.notify.loop import run_digests
from relay.notify.schedule import next_digest_at, parse_times
from relay.notify.sending import Answer, DeliverySettings, Sender, blank_out, url_parts
from relay.store import MIGRATIONS, SubmissionStore, run_migrations
from tests.support_notify import write_channels_file
from tests.support_openpgp import GpgReviewer, add_openpgp_reviewer, gpg_reviewer_home
from tests.support_server import generate_identity, write_reviewer_key_file

DAY = 24 * 3600.0
# 2026-01-05 00:00:00 UTC
MIDNIGHT = 1767571200.0


@pytest.fixture
def gpg_reviewer() -> Iterator[GpgReviewer]:
    with gpg_reviewer_home() as reviewer:
        yield reviewer


# --- the digest's text ---


@pytest.mark.parametrize("counts", [(0, 0), (12345, 12345), (1, 0), (MAX_COUNT, 7), (10**15, 0)])
def test_every_digest_has_the_same_length(counts: tuple[int, int]) -> None:
    for test in (False, True):
        text = render(Digest(*counts, test=test))
        assert len(text) == DIGEST_LENGTH
        assert text.isascii()
        assert not text.endswith("\n")
        assert all(line == line.rstrip() for line in text.splitlines())


def test_the_digest_says_the_two_counts_and_nothing_else() -> None:
    text = render(Digest(waiting=12345, arrived=3))
    assert "Submissions waiting on the relay:       12345" in text
    assert "Arrived since the last digest:              3" in text
    assert render(Digest(10**15, 0)).count(str(MAX_COUNT)) == 1


def test_the_encrypted_digest_has_the_same_size_for_0_and_12345(gpg_reviewer: GpgReviewer) -> None:
    key = minimal_public_key(gpg_reviewer.public_key, "test key")
    keyring = PublicKeyring.temporary([key])
    try:
        sizes = {
            len(keyring.encrypt_text([key.fingerprint], render(Digest(n, n))))
            for n in (0, 12345, 0, 12345)
        }
        opened = gpg_reviewer.gpg(
            "--decrypt",
            input_bytes=keyring.encrypt_text([key.fingerprint], render(Digest(0, 12345))).encode(),
        )
    finally:
        keyring.close()
    print(f"armored digest for cv25519: {sizes} bytes; plain text: {DIGEST_LENGTH}")
    assert len(sizes) == 1
    assert opened.decode() == render(Digest(0, 12345))


# --- the schedule ---


def test_digest_times_are_read_from_toml_and_from_the_environment(tmp_path: Path) -> None:
    config_file = tmp_path / "relay.toml"
    config_file.write_text('notify_times = ["20:00", "08:00"]\n')
    assert load_config({}, config_file).notify_times == ("08:00", "20:00")
    assert load_config({"TIPRELAY_NOTIFY_TIMES": "06:30, 12:00,18:00"}, None).notify_times == (
        "06:30",
        "12:00",
        "18:00",
    )
    assert load_config({}, None).notify_times == ("08:00",)
    assert load_config({}, None).notify_channels_file is None


@pytest.mark.parametrize(
    ("times", "says"),
    [
        ("00:00,04:00,08:00,12:00,16:00,20:00,22:00", "at most 6 times a day"),
        ("08:00,10:59", "at least 3 hours apart"),
        ("23:00,01:00", "at least 3 hours apart (across midnight too)"),
        ("8:00", '"HH:MM"'),
        ("24:00", '"HH:MM"'),
        ("08:00,08:00", "at least 3 hours apart"),
        ("", "at least one time"),
    ],
)
def test_digest_times_that_break_a_rule_are_refused_with_a_clear_message(
    times: str, says: str
) -> None:
    with pytest.raises(ConfigError, match="notify_times") as refused:
        load_config({"TIPRELAY_NOTIFY_TIMES": times}, None)
    assert says in str(refused.value)


def test_six_digests_four_hours_apart_are_allowed() -> None:
    times = ["02:00", "06:00", "10:00", "14:00", "18:00", "22:00"]
    assert parse_times(times) == tuple(times)


def test_the_next_digest_time_is_the_next_fixed_time_of_day() -> None:
    times = ("08:00", "20:00")
    assert next_digest_at(times, MIDNIGHT) == MIDNIGHT + 8 * 3600
    assert next_digest_at(times, MIDNIGHT + 8 * 3600) == MIDNIGHT + 20 * 3600
    assert next_digest_at(times, MIDNIGHT + 21 * 3600) == MIDNIGHT + DAY + 8 * 3600


class _FakeClock:
    """A wall clock that moves only when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.naps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class _RecordingSender(Sender):
    def __init__(self, clock: _FakeClock) -> None:
        super().__init__([], lambda _r, t: t, DeliverySettings(1, 0, 1), clock=clock)
        self.sent: list[tuple[float, Digest, float | None]] = []
        self.clock = clock

    async def deliver(
        self, digest: Digest, *, deadline: float | None = None, retry: bool = True
    ) -> list[Answer]:
        self.sent.append((self.clock(), digest, deadline))
        return []


def test_digests_go_out_at_the_fixed_times_whatever_arrived() -> None:
    clock = _FakeClock(MIDNIGHT + 7 * 3600)  # 07:00
    sender = _RecordingSender(clock)
    counts = iter([(5, 5), (5, 0), (0, 0), (9, 4)])

    async def take_counts() -> tuple[int, int]:
        return next(counts)

    async def three_days() -> None:
        task = asyncio.create_task(
            run_digests(("08:00", "20:00"), take_counts, sender, clock=clock, sleep=clock.sleep)
        )
        while len(sender.sent) < 4:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(three_days())
    sender.close()
    assert [(at - MIDNIGHT) / 3600 for at, _, _ in sender.sent] == [8, 20, 32, 44]
    assert [d for _, d, _ in sender.sent] == [
        Digest(5, 5),
        Digest(5, 0),
        Digest(0, 0),
        Digest(9, 4),
    ]
    assert [(deadline - at) / 3600 for at, _, deadline in sender.sent if deadline] == [12] * 4
    assert max(clock.naps) <= 60, "the loop checks the wall clock at least every minute"


def test_retries_double_their_wait_and_stop_when_the_next_digest_is_due(tmp_path: Path) -> None:
    from relay.notify.channels import Channel

    clock = _FakeClock(MIDNIGHT)
    channel = Channel(1, "json", "json://127.0.0.1:9/never-used", None, encrypted=False)
    sender = Sender([channel], lambda _r, t: t, DeliverySettings(1, 5, 100), clock=clock)
    tried: list[float] = []

    async def refuse(_channel: Channel, _text: str) -> tuple[str, list[str]]:
        tried.append(clock())
        return "refused", []

    sender.attempt = refuse  # type: ignore[method-assign]
    sender._sleep = clock.sleep  # type: ignore[attr-defined]
    (answer,) = asyncio.run(sender.deliver(Digest(1, 1), deadline=MIDNIGHT + 1000))
    sender.close()
    # Waits of 100, 200 and 400 s; the next (800 s) would pass the next digest.
    assert [t - MIDNIGHT for t in tried] == [0, 100, 300, 700]
    assert (answer.sent, answer.attempts, answer.reason) == (False, 4, "refused")


# --- the arrival counter in the store ---


def _commit(store: SubmissionStore) -> None:
    with store.blob_writer() as writer:
        writer.write(b"age ciphertext")
        writer.commit("browser")


def test_the_store_counts_arrivals_as_one_number_reset_at_each_digest(tmp_path: Path) -> None:
    with SubmissionStore(tmp_path / "data") as store:
        store.count_arrivals(True)
        for _ in range(3):
            _commit(store)
        assert store.take_digest_counts() == (3, 3)
        first = store.list()[0].id
        store.delete(first)
        _commit(store)
        assert store.take_digest_counts() == (3, 1)
        assert store.take_digest_counts() == (3, 0)
        rows = list(store.sqlite().query("SELECT * FROM arrival_counter"))
        assert rows == [{"one": 1, "arrived": 0}]


def test_the_counter_migration_keeps_existing_rows_and_counts_only_what_comes_after(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "blobs").mkdir(parents=True)
    old = Database(sqlite3.connect(data_dir / "relay.sqlite3"), execute_plugins=False)
    assert "create_arrival_counter" not in run_migrations(old, MIGRATIONS[:3])
    old.execute(
        "INSERT INTO submissions VALUES (?, '2026-01-02', 3, ?, 'server', 'stored')",
        ["ab" * 16, "cd" * 32],
    )
    old.conn.commit()
    old.close()
    (data_dir / "blobs" / f"{'ab' * 16}.age").write_bytes(b"abc")
    with SubmissionStore(data_dir) as store:
        store.count_arrivals(True)
        _commit(store)
        assert store.take_digest_counts() == (2, 1)


def test_without_notifications_no_count_is_kept(tmp_path: Path) -> None:
    with SubmissionStore(tmp_path / "data") as store:
        store.count_arrivals(True)
        _commit(store)
        store.count_arrivals(False)
        _commit(store)
        assert list(store.sqlite().query("SELECT * FROM arrival_counter")) == []
        assert store.take_digest_counts() == (2, 0)


# --- the channels file ---


def _keys(tmp_path: Path, gpg_reviewer: GpgReviewer | None = None) -> Path:
    keys = tmp_path / "keys"
    write_reviewer_key_file(keys, "anna", generate_identity(tmp_path / "anna.identity"))
    if gpg_reviewer is not None:
        add_openpgp_reviewer(keys, "olga", gpg_reviewer)
    return keys


SECRET_URL = "ntfy://user:Top5ecretPass@ntfy.example.org/secret-topic-xyz"


def test_channels_bind_to_reviewers_and_plain_is_an_explicit_choice(
    tmp_path: Path, gpg_reviewer: GpgReviewer
) -> None:
    keyring = load_keyring(_keys(tmp_path, gpg_reviewer))
    path = write_channels_file(
        tmp_path / "channels.toml",
        [
            {"url": "mailtos://u:p@mail.example.org?to=olga@example.org", "reviewer": "olga"},
            {"url": SECRET_URL, "plain": True},
            {"url": "json://127.0.0.1:9/x", "reviewer": "anna", "plain": True},
        ],
    )
    channels = load_channels(path, keyring)
    assert [(c.number, c.kind, c.reviewer, c.encrypted) for c in channels] == [
        (1, "mailtos", "olga", True),
        (2, "ntfy", None, False),
        (3, "json", "anna", False),
    ]
    assert "Top5ecret" not in repr(channels)
    assert channels[1].label == "channel 2 (ntfy)"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"url": SECRET_URL}, "no reviewer with an OpenPGP key is named"),
        ({"url": SECRET_URL, "reviewer": "anna"}, "reviewer anna has no OpenPGP key"),
        ({"url": SECRET_URL, "reviewer": "nobody", "plain": True}, "must name a reviewer"),
        ({"url": "not a url Top5ecretPass", "plain": True}, "must be an Apprise URL"),
        ({"url": "nosuchservice://Top5ecretPass@x", "plain": True}, "Apprise does not accept"),
        ({"url": SECRET_URL, "plain": True, "colour": "red"}, "unknown key(s) colour"),
        ({"plain": True}, "url is missing"),
    ],
)
def test_a_bad_channel_is_refused_by_number_without_showing_its_url(
    tmp_path: Path, entry: dict[str, object], says: str
) -> None:
    keyring = load_keyring(_keys(tmp_path))
    path = write_channels_file(tmp_path / "channels.toml", [entry])
    with pytest.raises(ConfigError) as refused:
        load_channels(path, keyring)
    message = str(refused.value)
    assert says in message and "channel 1" in message
    assert "Top5ecret" not in message


def test_a_channels_file_others_may_read_is_refused(tmp_path: Path) -> None:
    keyring = load_keyring(_keys(tmp_path))
    path = write_channels_file(tmp_path / "c.toml", [{"url": SECRET_URL, "plain": True}], 0o640)
    with pytest.raises(ConfigError, match=r"may be read by others \(mode 0640\).*chmod 600"):
        load_channels(path, keyring)
    os.chmod(path, 0o600)
    assert len(load_channels(path, keyring)) == 1
    with pytest.raises(ConfigError, match="does not exist"):
        load_channels(tmp_path / "missing.toml", keyring)


def test_what_notify_test_shows_of_apprise_has_the_url_parts_blanked() -> None:
    url = "mailtos://relay:Pa%24%24word@mail.example.org:587?to=olga@example.org"
    said = "Failed to log in as relay with Pa$$word at mail.example.org for olga@example.org"
    shown = blank_out(said, url_parts(url))
    for secret in ("Pa$$word", "mail.example.org", "olga@example.org", "relay "):
        assert secret not in shown
    assert shown.startswith("Failed to log in as ***")
