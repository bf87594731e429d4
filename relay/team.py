"""The team's recipient set, pinned on the offline machine.

Replies are encrypted to the source and to the team. Which keys are "the team"
is decided once, on the offline machine, from files the team brings by hand
(``tiprelay pin-team``), never from what a relay says: a seized or impostor
relay could list its own key. ``tiprelay pull`` records the relay's set into
the bundle (``recipients.json``) only so that ``tiprelay reply`` can compare the
two and report any difference loudly; a pulled set with a key the pin lacks
makes ``reply`` refuse.

The pinned file (default ``~/.config/tiprelay/team``, or ``$XDG_CONFIG_HOME``;
``--team FILE`` elsewhere) is plain text: ``#`` comments, then one ``age1...``
recipient per line. Input files are recipient files of the same shape or the
relay's ``keys/<name>.toml`` reviewer files (their ``age_recipient``).

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
from relay.crypto.recipients import X25519Recipient
from relay.errors import TiprelayError
from relay.fingerprint import recipient_set_fingerprint
from relay.manifest import write_file_atomically

PULLED_RECIPIENTS_NAME = "recipients.json"
MAX_TEAM_FILE_BYTES = 1024 * 1024
MAX_TEAM_SIZE = 1000


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


def recipients_in_file(path: Path) -> list[X25519Recipient]:
    """The recipients of one file the team brought: a recipients list or a keys/*.toml."""
    text = _read_text(path)
    if path.suffix == ".toml":
        try:
            value = tomllib.loads(text).get("age_recipient")
        except tomllib.TOMLDecodeError as exc:
            raise TeamError(f"{path} is not valid TOML ({exc}).") from None
        if not isinstance(value, str):
            raise TeamError(f"{path} has no age_recipient.")
        lines = [value]
    else:
        lines = [line.strip() for line in text.splitlines()]
    found = []
    for number, line in enumerate(lines, start=1):
        if line and not line.startswith("#"):
            try:
                found.append(X25519Recipient.parse(line))
            except KeyFormatError as exc:
                raise TeamError(f"{path}, line {number}: {exc}") from None
    if not found:
        raise TeamError(f"{path} holds no age1... recipient.")
    return found


def _unique(recipients: Iterable[X25519Recipient]) -> list[X25519Recipient]:
    return sorted(set(recipients), key=lambda r: str(r).encode())


def pin_team(team_path: Path, files: Sequence[Path]) -> list[X25519Recipient]:
    """Write the pinned set from ``files`` (replacing any earlier pin); the set."""
    team = _unique(r for path in files for r in recipients_in_file(path))
    if len(team) > MAX_TEAM_SIZE:
        raise TeamError(f"More than {MAX_TEAM_SIZE} recipients; that is not a team.")
    fingerprint = recipient_set_fingerprint(str(r) for r in team)
    text = (
        "# The team's age recipients, pinned by `tiprelay pin-team`.\n"
        "# `tiprelay reply` encrypts to exactly these (and the source).\n"
        f"# Fingerprint: {fingerprint}\n" + "".join(f"{r}\n" for r in team)
    )
    team_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file_atomically(team_path, text.encode())
    return team


def load_pinned_team(team_path: Path) -> list[X25519Recipient]:
    """The pinned set, or TeamError telling how to pin one."""
    if not team_path.is_file():
        raise TeamError(
            f"No team is pinned at {team_path}. Pin it once from the files the team "
            "brought by hand: tiprelay pin-team RECIPIENT_FILES..."
        )
    return _unique(recipients_in_file(team_path))


def record_pulled_recipients(bundle_dir: Path, recipients: Sequence[str]) -> None:
    """Keep the relay's set in the bundle, for ``reply`` to compare (never to use)."""
    document = {"recipients": sorted(recipients)}
    data = (json.dumps(document, indent=2) + "\n").encode()
    write_file_atomically(bundle_dir / PULLED_RECIPIENTS_NAME, data)


@dataclass(frozen=True)
class TeamComparison:
    """The pinned set against the one the relay gave at the last pull."""

    pinned: list[X25519Recipient]
    pulled: list[str] | None
    """None when the bundle holds no pulled set (pulled by an older tiprelay)."""

    @property
    def extra(self) -> list[str]:
        """Keys the relay lists that the pin lacks: a reason to refuse."""
        pinned = {str(r) for r in self.pinned}
        return sorted(r for r in self.pulled or () if r not in pinned)

    @property
    def missing(self) -> list[str]:
        """Pinned keys the relay no longer lists (a reviewer removed, or a swap)."""
        pulled = set(self.pulled or ())
        return sorted(str(r) for r in self.pinned if str(r) not in pulled)

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


def compare_with_pulled(bundle_dir: Path, pinned: list[X25519Recipient]) -> TeamComparison:
    """Read the bundle's pulled set (if any) and compare it with the pin."""
    path = bundle_dir / PULLED_RECIPIENTS_NAME
    if not path.is_file():
        return TeamComparison(pinned, None)
    try:
        document = json.loads(_read_text(path))
        pulled = document["recipients"]
        if not isinstance(pulled, list) or not all(isinstance(r, str) for r in pulled):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise TeamError(f"{path} is damaged; pull again.") from None
    return TeamComparison(pinned, pulled)
