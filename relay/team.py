"""The team's recipient set, pinned on the offline machine.

Replies are encrypted to the source and to the team. Which keys are "the team"
is decided once, on the offline machine, from files the team brings by hand
(``tiprelay pin-team``), never from what a relay says: a seized or impostor
relay could list its own key. ``tiprelay pull`` records the relay's set into
the bundle (``recipients.json``) only so that ``tiprelay reply`` can compare the
two and report any difference loudly; a pulled set with a key the pin lacks
makes ``reply`` refuse.

A team member is an age recipient or an OpenPGP key. Input files are:

- recipient files: ``#`` comments and one ``age1...`` per line;
- the relay's ``keys/<name>.toml`` reviewer files: their ``age_recipient``, or
  their ``openpgp_fingerprint`` with the armored key ``<FINGERPRINT>.asc``
  beside the file (as the relay keeps it);
- armored OpenPGP public keys (``gpg --export --armor``), given directly.

Every OpenPGP key is checked with gpg (relay.crypto.openpgp_keys) when it is
pinned and again each time the pin is read: a secret, revoked or expired key,
one without an encryption subkey or of a weak algorithm is refused by name.

The pin (default ``~/.config/tiprelay/team``, or ``$XDG_CONFIG_HOME``;
``--team FILE`` elsewhere) is plain text: ``#`` comments, then one recipient per
line, as the relay's recipient set lists them: ``age1...`` or
``openpgp:<FINGERPRINT>`` (40 upper-case hex digits). The armored key of each
``openpgp:`` line is kept beside the pin, in the folder named after it with
``-openpgp`` added (``team-openpgp/<FINGERPRINT>.asc``), exactly as it was
given. Pinning again replaces both (the keys first, then the list, then keys
no longer listed are removed).

Offline code: nothing here imports aiohttp.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relay.crypto.errors import KeyFormatError
from relay.crypto.openpgp_gpg import FINGERPRINT, GpgError
from relay.crypto.openpgp_keys import (
    MAX_PUBLIC_KEY_BYTES,
    OpenPGPKeyError,
    OpenPGPPublicKey,
    inspect_public_key,
)
from relay.crypto.recipients import X25519Recipient
from relay.errors import TiprelayError
from relay.fingerprint import recipient_set_fingerprint
from relay.keyring import OPENPGP_KEY_SUFFIX, OPENPGP_PREFIX
from relay.manifest import write_file_atomically

PULLED_RECIPIENTS_NAME = "recipients.json"
MAX_TEAM_FILE_BYTES = 1024 * 1024
MAX_TEAM_SIZE = 1000
OPENPGP_FOLDER_SUFFIX = "-openpgp"
# Files read as OpenPGP public keys whatever they hold (a binary key gets its own message).
OPENPGP_KEY_FILE_SUFFIXES = frozenset({".asc", ".gpg", ".pgp"})


class TeamError(TiprelayError):
    """The pinned team is missing or unusable, or a pulled set cannot be trusted."""


def default_team_path() -> Path:
    """``$XDG_CONFIG_HOME/tiprelay/team``, else ``~/.config/tiprelay/team``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tiprelay" / "team"


def cases_record_path() -> Path:
    """Where this machine remembers the folder ``tiprelay decrypt`` last wrote a bundle to."""
    return default_team_path().with_name("cases")


def remember_cases_folder(out_dir: Path) -> None:
    """Record ``out_dir`` (made absolute) as the folder that holds the decrypted threads.

    A path on the offline machine, in the reviewer's own config folder (mode
    0600): ``tiprelay reply`` without ``-o`` finds the threads there.
    """
    record = cases_record_path()
    record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_atomically(record, f"{out_dir.resolve()}\n".encode())


def remembered_cases_folder() -> Path | None:
    """The folder ``tiprelay decrypt`` last wrote a bundle to on this machine, if any."""
    try:
        text = cases_record_path().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(text) if text and Path(text).is_absolute() else None


def _read_text(path: Path) -> str:
    with path.open("rb") as handle:
        raw = handle.read(MAX_TEAM_FILE_BYTES + 1)
    if len(raw) > MAX_TEAM_FILE_BYTES:
        raise TeamError(f"{path} is larger than any recipient file; refused.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TeamError(f"{path} is not UTF-8 text.") from None


TeamKey = X25519Recipient | OpenPGPPublicKey


@dataclass(frozen=True)
class PinnedTeam:
    """The team's keys: age recipients and OpenPGP public keys, each sorted, no duplicates."""

    age: tuple[X25519Recipient, ...]
    openpgp: tuple[OpenPGPPublicKey, ...]

    @classmethod
    def of(cls, keys: Iterable[TeamKey]) -> PinnedTeam:
        """The team of ``keys`` (duplicates dropped)."""
        age: dict[str, X25519Recipient] = {}
        openpgp: dict[str, OpenPGPPublicKey] = {}
        for key in keys:
            if isinstance(key, OpenPGPPublicKey):
                openpgp.setdefault(str(key), key)
            else:
                age.setdefault(str(key), key)
        return cls(
            tuple(age[name] for name in sorted(age, key=str.encode)),
            tuple(openpgp[name] for name in sorted(openpgp, key=str.encode)),
        )

    @property
    def recipients(self) -> list[str]:
        """The set as the relay lists it: ``age1...`` and ``openpgp:<FINGERPRINT>``, sorted."""
        return sorted((str(k) for k in (*self.age, *self.openpgp)), key=str.encode)

    @property
    def fingerprint(self) -> str:
        """The recipient-set fingerprint (relay.fingerprint): the relay's page shows it too."""
        return recipient_set_fingerprint(self.recipients)

    def __len__(self) -> int:
        return len(self.age) + len(self.openpgp)


def openpgp_key_folder(team_path: Path) -> Path:
    """Where the pin at ``team_path`` keeps its armored OpenPGP keys."""
    return team_path.with_name(team_path.name + OPENPGP_FOLDER_SUFFIX)


def _checked_openpgp_key(
    data: bytes, source: str, fingerprint: str | None = None
) -> OpenPGPPublicKey:
    """gpg's verdict on one armored public key; TeamError naming ``source`` if refused."""
    try:
        key = inspect_public_key(data, source)
    except (OpenPGPKeyError, GpgError) as exc:
        raise TeamError(str(exc)) from None
    if fingerprint is not None and key.fingerprint != fingerprint:
        raise TeamError(
            f"{source} holds OpenPGP key {key.fingerprint}, not {fingerprint} as expected."
        )
    return key


def _read_key_file(path: Path, fingerprint: str | None = None) -> OpenPGPPublicKey:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PUBLIC_KEY_BYTES + 1)
    except FileNotFoundError:
        raise TeamError(
            f"The OpenPGP public key {path} is missing. Ask the reviewer for it "
            f"(gpg --export --armor {fingerprint or 'FINGERPRINT'}) or copy it from the "
            "relay's keys/ folder, by hand."
        ) from None
    return _checked_openpgp_key(data, str(path), fingerprint)


def _keys_in_reviewer_file(path: Path, text: str) -> list[TeamKey]:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TeamError(f"{path} is not valid TOML ({exc}).") from None
    fingerprint = table.get("openpgp_fingerprint")
    if fingerprint is not None and "age_recipient" in table:
        raise TeamError(
            f"{path} has both age_recipient and openpgp_fingerprint; the relay would refuse it too."
        )
    if fingerprint is not None:
        if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
            raise TeamError(
                f"{path}: openpgp_fingerprint is not a 40-digit upper-case fingerprint."
            )
        return [_read_key_file(path.with_name(fingerprint + OPENPGP_KEY_SUFFIX), fingerprint)]
    value = table.get("age_recipient")
    if not isinstance(value, str):
        raise TeamError(f"{path} has no age_recipient and no openpgp_fingerprint.")
    try:
        return [X25519Recipient.parse(value)]
    except KeyFormatError as exc:
        raise TeamError(f"{path}: age_recipient: {exc}") from None


def _age_recipients_in_lines(path: Path, text: str) -> list[X25519Recipient]:
    found = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(OPENPGP_PREFIX):
            raise TeamError(
                f"{path}, line {number} names an OpenPGP key without the key itself. "
                "Give its armored public key (a .asc file), or the relay's keys/<name>.toml "
                "with the .asc beside it."
            )
        try:
            found.append(X25519Recipient.parse(line))
        except KeyFormatError as exc:
            raise TeamError(f"{path}, line {number}: {exc}") from None
    return found


def _is_openpgp_key_file(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in OPENPGP_KEY_FILE_SUFFIXES or head.lstrip().startswith(
        b"-----BEGIN PGP "
    )


def keys_in_file(path: Path) -> list[TeamKey]:
    """The keys of one file the team brought: a recipient list, a keys/*.toml or a .asc."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if _is_openpgp_key_file(path, head):
        return [_read_key_file(path)]
    text = _read_text(path)
    found: list[TeamKey] = []
    if path.suffix == ".toml":
        found.extend(_keys_in_reviewer_file(path, text))
    else:
        found.extend(_age_recipients_in_lines(path, text))
    if not found:
        raise TeamError(f"{path} holds no age1... recipient and no OpenPGP key.")
    return found


def _pin_text(team: PinnedTeam) -> str:
    return (
        "# The team's recipients, pinned by `tiprelay pin-team`.\n"
        "# `tiprelay reply` encrypts to exactly these (and the source).\n"
        "# Each openpgp:<FINGERPRINT> key is kept in the folder beside this file whose\n"
        f"# name ends in {OPENPGP_FOLDER_SUFFIX}, as <FINGERPRINT>{OPENPGP_KEY_SUFFIX}.\n"
        f"# Fingerprint: {team.fingerprint}\n" + "".join(f"{r}\n" for r in team.recipients)
    )


def pin_team(team_path: Path, files: Sequence[Path]) -> PinnedTeam:
    """Write the pinned set from ``files`` (replacing any earlier pin); the set."""
    team = PinnedTeam.of(key for path in files for key in keys_in_file(path))
    if len(team) > MAX_TEAM_SIZE:
        raise TeamError(f"More than {MAX_TEAM_SIZE} recipients; that is not a team.")
    team_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = openpgp_key_folder(team_path)
    if team.openpgp:
        folder.mkdir(mode=0o700, exist_ok=True)
    for key in team.openpgp:
        write_file_atomically(
            folder / (key.fingerprint + OPENPGP_KEY_SUFFIX), key.armored.encode("ascii")
        )
    write_file_atomically(team_path, _pin_text(team).encode())
    if folder.is_dir():
        kept = {key.fingerprint + OPENPGP_KEY_SUFFIX for key in team.openpgp}
        for stale in folder.glob("*" + OPENPGP_KEY_SUFFIX):
            if stale.name not in kept:
                stale.unlink()
    return team


def load_pinned_team(team_path: Path) -> PinnedTeam:
    """The pinned set, its OpenPGP keys checked again; TeamError telling how to pin one."""
    if not team_path.is_file():
        raise TeamError(
            f"No team is pinned at {team_path}. Pin it once from the files the team "
            "brought by hand: tiprelay pin-team RECIPIENT_FILES..."
        )
    keys: list[TeamKey] = []
    folder = openpgp_key_folder(team_path)
    for number, raw_line in enumerate(_read_text(team_path).splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(OPENPGP_PREFIX):
            fingerprint = line.removeprefix(OPENPGP_PREFIX)
            if not FINGERPRINT.fullmatch(fingerprint):
                raise TeamError(
                    f"{team_path}, line {number}: not openpgp:<40 upper-case hex digits>."
                )
            try:
                keys.append(
                    _read_key_file(folder / (fingerprint + OPENPGP_KEY_SUFFIX), fingerprint)
                )
            except TeamError as exc:
                raise TeamError(
                    f"{exc} The pin at {team_path} cannot be used; pin the team again from "
                    "the files they bring by hand."
                ) from None
            continue
        try:
            keys.append(X25519Recipient.parse(line))
        except KeyFormatError as exc:
            raise TeamError(f"{team_path}, line {number}: {exc}") from None
    if not keys:
        raise TeamError(f"{team_path} holds no recipient; pin the team again.")
    return PinnedTeam.of(keys)


def record_pulled_recipients(bundle_dir: Path, recipients: Sequence[str]) -> None:
    """Keep the relay's set in the bundle, for ``reply`` to compare (never to use)."""
    document = {"recipients": sorted(recipients)}
    data = (json.dumps(document, indent=2) + "\n").encode()
    write_file_atomically(bundle_dir / PULLED_RECIPIENTS_NAME, data)


@dataclass(frozen=True)
class TeamComparison:
    """The pinned set against the one the relay gave at the last pull (both as the
    relay lists them: ``age1...`` and ``openpgp:<FINGERPRINT>``)."""

    pinned: list[str]
    pulled: list[str] | None
    """None when the bundle holds no pulled set (pulled by an older tiprelay)."""

    @property
    def extra(self) -> list[str]:
        """Keys the relay lists that the pin lacks: a reason to refuse."""
        pinned = set(self.pinned)
        return sorted(r for r in self.pulled or () if r not in pinned)

    @property
    def missing(self) -> list[str]:
        """Pinned keys the relay no longer lists (a reviewer removed, or a swap)."""
        pulled = set(self.pulled or ())
        return sorted(r for r in self.pinned if r not in pulled)

    def warnings(self) -> list[str]:
        if self.pulled is None:
            return ["WARNING: the bundle holds no recipient set from the relay to compare."]
        lines = [
            f"WARNING: the relay does not list the pinned key {key}; the reply is still "
            "encrypted to it, and the relay will refuse the reply if its set differs."
            for key in self.missing
        ]
        lines += [
            f"WARNING: the relay lists the key {key}, which the pinned team does not hold."
            for key in self.extra
        ]
        return lines


def compare_with_pulled(bundle_dir: Path, pinned: PinnedTeam) -> TeamComparison:
    """Read the bundle's pulled set (if any) and compare it with the pin."""
    path = bundle_dir / PULLED_RECIPIENTS_NAME
    if not path.is_file():
        return TeamComparison(pinned.recipients, None)
    try:
        document = json.loads(_read_text(path))
        pulled = document["recipients"]
        if not isinstance(pulled, list) or not all(isinstance(r, str) for r in pulled):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise TeamError(f"{path} is damaged; pull again.") from None
    return TeamComparison(pinned.recipients, pulled)
