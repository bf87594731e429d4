"""Is this OpenPGP public key fit to be a reviewer? gpg reads it; this module decides.

A reviewer's OpenPGP key is refused, each time with its own message, when it is
secret material, revoked, expired, has no usable encryption key, or uses a weak
algorithm (RSA under 3072 bits, DSA, ElGamal), or one the browsers' OpenPGP.js
cannot use (a curve other than Curve25519, NIST P-256/384/521 or brainpool),
for its primary key or for any usable encryption subkey. Only keys an operator
put in ``keys/`` (or gave ``tiprelay reviewer add``) reach gpg here: never bytes
from an anonymous client.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HeaderError, KeyFormatError
from .openpgp_gpg import FINGERPRINT, NO_DAEMON_OPTIONS, GpgError, open_gpg, quiet_environment
from .openpgp_packets import TAG_USER_ATTRIBUTE, read_packets

MAX_PUBLIC_KEY_BYTES = 64 * 1024
MIN_RSA_BITS = 3072
_RSA_ALGORITHMS = frozenset({"1", "2", "3"})
_WEAK_ALGORITHMS = {"16": "ElGamal", "17": "DSA", "20": "ElGamal"}
# Elliptic-curve keys (ECDH 18, ECDSA 19, EdDSA 22) on curves that both gpg and
# the browsers' OpenPGP.js handle: a key one side cannot use would make every
# submission of that side fail. (OpenPGP.js refuses secp256k1, for one.)
_CURVE_ALGORITHMS = frozenset({"18", "19", "22"})
_CURVES = frozenset({
    "ed25519", "cv25519", "nistp256", "nistp384", "nistp521",
    "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1",
})
_REVOKED = "r"
_EXPIRED = "e"
_UNUSABLE_VALIDITY = frozenset({"r", "e", "i", "d", "n"})


class OpenPGPKeyError(KeyFormatError):
    """This OpenPGP key cannot be a reviewer's key."""


class OpenPGPKeyExpired(OpenPGPKeyError):
    """This OpenPGP key can no longer encrypt: it, or every encryption subkey, has expired."""


@dataclass(frozen=True)
class OpenPGPPublicKey:
    """A checked OpenPGP public key: what the relay wraps file keys to."""

    fingerprint: str  # the primary key's, 40 upper-case hex digits
    encryption_key_ids: frozenset[str]  # 16 hex digits each: the keys gpg may encrypt to
    user_ids: tuple[str, ...]
    expires: int | None  # seconds since the epoch: when it can no longer encrypt; None: never
    armored: str  # exactly as given (ASCII armor)

    def __str__(self) -> str:
        return f"openpgp:{self.fingerprint}"


def _as_armored_text(data: bytes, source: str) -> str | None:
    if len(data) > MAX_PUBLIC_KEY_BYTES:
        raise OpenPGPKeyError(f"{source} is larger than {MAX_PUBLIC_KEY_BYTES} bytes.")
    if b"-----BEGIN PGP PRIVATE KEY BLOCK-----" in data:
        raise OpenPGPKeyError(
            f"{source} is an OpenPGP SECRET key. Only the public key belongs on the "
            "relay: export it with `gpg --export --armor FINGERPRINT`. If this secret "
            "key was copied somewhere it should not be, treat it as exposed."
        )
    text = data.decode("latin-1")
    if not text.isascii() or "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        return None
    return text


def _not_armored(source: str) -> OpenPGPKeyError:
    return OpenPGPKeyError(
        f"{source} is not an ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY "
        "BLOCK-----): export it with `gpg --export --armor FINGERPRINT`."
    )


def _refusal(record: dict[str, Any]) -> str | None:
    """Why this key or subkey's algorithm is refused, or None."""
    algorithm, length = record.get("algo", ""), record.get("length", "")
    if algorithm in _WEAK_ALGORITHMS:
        return f"uses {_WEAK_ALGORITHMS[algorithm]}, a weak algorithm"
    if algorithm in _RSA_ALGORITHMS:
        if not length.isdecimal() or int(length) < MIN_RSA_BITS:
            return f"uses RSA-{length}, a weak algorithm"
        return None
    if algorithm in _CURVE_ALGORITHMS:
        curve = record.get("curve", "")
        if curve in _CURVES:
            return None
        return f"uses the curve {curve or '(unknown)'}, which browsers' OpenPGP.js cannot use"
    return f"uses public-key algorithm {algorithm}, which tiprelay does not support"


def _expiry(record: dict[str, Any]) -> int | None:
    value = record.get("expires") or ""
    return int(value) if value.isascii() and value.isdigit() else None


def _check_record(
    record: dict[str, Any], source: str, now: float, *, expired_ok: bool = False
) -> None:
    fingerprint = record.get("fingerprint", "?")
    if record.get("type") in ("sec", "ssb"):
        raise OpenPGPKeyError(
            f"{source} holds OpenPGP SECRET key material ({fingerprint}). Only the public "
            "key belongs on the relay: `gpg --export --armor FINGERPRINT`."
        )
    validity = record.get("trust", "")
    expires = _expiry(record)
    if validity == _REVOKED:
        raise OpenPGPKeyError(f"{source}: OpenPGP key {fingerprint} is revoked.")
    if not expired_ok and (validity == _EXPIRED or (expires is not None and expires <= now)):
        raise OpenPGPKeyExpired(
            f"{source}: OpenPGP key {fingerprint} has expired. The reviewer can extend it "
            "(gpg --quick-set-expire) and export it again."
        )
    refusal = _refusal(record)
    if refusal:
        raise OpenPGPKeyError(
            f"{source}: OpenPGP key {fingerprint} {refusal}. "
            "Use a key of Curve25519 (ed25519/cv25519) or RSA of at least 3072 bits."
        )


def _encryption_keys(
    record: dict[str, Any], source: str, now: float, *, expired_ok: bool = False
) -> dict[str, int | None]:
    """Key ids gpg could encrypt to, checking each such subkey, with their expiry.

    When none is left but some have expired: OpenPGPKeyExpired, or with
    ``expired_ok`` those expired ones (what the key encrypted to until then).
    """
    keys: dict[str, int | None] = {}
    lapsed: dict[str, int | None] = {}
    if "e" in record.get("cap", ""):
        keys[record["keyid"]] = None  # the primary's own expiry applies anyway
    for key_id, sub in (record.get("subkey_info") or {}).items():
        expires = _expiry(sub)
        validity = sub.get("trust", "")
        if "e" not in sub.get("cap", "") or validity in _UNUSABLE_VALIDITY - {_EXPIRED}:
            continue
        if validity == _EXPIRED or (expires is not None and expires <= now):
            lapsed[key_id] = expires if expires is not None else int(now)
            continue
        refusal = _refusal(sub)
        if refusal:
            raise OpenPGPKeyError(
                f"{source}: the encryption subkey {key_id} of OpenPGP key "
                f"{record.get('fingerprint', '?')} {refusal}. "
                "Use Curve25519 (cv25519) or RSA of at least 3072 bits."
            )
        keys[key_id] = expires
    if keys or not lapsed:
        return keys
    if not expired_ok:
        raise OpenPGPKeyExpired(
            f"{source}: the encryption subkeys of OpenPGP key {record.get('fingerprint', '?')} "
            "have expired. The reviewer can extend them (gpg --quick-set-expire "
            "FINGERPRINT 1y '*') and export the key again."
        )
    return lapsed


def _usable_until(primary_expires: int | None, subkeys: dict[str, int | None]) -> int | None:
    """When the key stops being usable for encryption: the primary's expiry, or the
    last of its encryption keys' (None: never)."""
    expiries = [e for e in subkeys.values() if e is not None]
    last = None if len(expiries) < len(subkeys) else max(expiries, default=0)
    limits = [e for e in (primary_expires, last) if e is not None]
    return min(limits) if limits else None


def inspect_public_key(
    data: bytes, source: str, *, scratch: Path | None = None, expired_ok: bool = False
) -> OpenPGPPublicKey:
    """Check one armored OpenPGP public key; OpenPGPKeyError names ``source`` and the fault.

    gpg reads the key in a throwaway home created under ``scratch`` (the
    system's temporary folder if None) and removed before this returns. An
    expired key raises OpenPGPKeyExpired; with ``expired_ok`` it is returned,
    its ``expires`` in the past, if nothing else is wrong with it (the relay
    keeps such a reviewer for the API, and seals to them no more).
    """
    text = _as_armored_text(data, source)
    home = Path(tempfile.mkdtemp(prefix="tiprelay-gpg-", dir=scratch))
    try:
        gpg = open_gpg(home, env=quiet_environment(home), options=NO_DAEMON_OPTIONS)
        # Binary keys are read too, only to say precisely what they are.
        records = list(gpg.scan_keys_mem(data.decode("latin-1") if text is None else text))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for record in records:
        if record.get("type") in ("sec", "ssb"):
            _check_record(record, source, 0)
    if text is None:
        raise _not_armored(source)
    if not records:
        raise OpenPGPKeyError(f"{source}: gpg found no OpenPGP key in it.")
    if len(records) > 1:
        raise OpenPGPKeyError(
            f"{source} holds {len(records)} OpenPGP keys; a reviewer file holds exactly one."
        )
    [record] = records
    now = time.time()
    _check_record(record, source, now, expired_ok=expired_ok)
    fingerprint = record.get("fingerprint", "")
    if not FINGERPRINT.fullmatch(fingerprint):
        raise OpenPGPKeyError(
            f"{source}: only version 4 OpenPGP keys (40-digit fingerprints) are supported."
        )
    subkeys = _encryption_keys(record, source, now, expired_ok=expired_ok)
    if not subkeys:
        raise OpenPGPKeyError(
            f"{source}: OpenPGP key {fingerprint} has no usable encryption subkey (it can "
            "only sign, or its encryption subkeys are expired or revoked). Add one with "
            "`gpg --quick-add-key FINGERPRINT cv25519 encr`."
        )
    expires = _usable_until(_expiry(record), subkeys)
    if record.get("trust", "") == _EXPIRED or all(
        e is not None and e <= now for e in subkeys.values()
    ):
        # Expired (only with expired_ok): say so even if gpg gave no date.
        expires = min(expires if expires is not None else int(now), int(now))
    return OpenPGPPublicKey(
        fingerprint=fingerprint,
        encryption_key_ids=frozenset(subkeys),
        user_ids=tuple(record.get("uids") or ()),
        expires=expires,
        armored=text,
    )


def _refuse_photo_ids(binary: bytes, key: OpenPGPPublicKey, source: str) -> None:
    try:
        tags = {packet.tag for packet in read_packets(binary, max_bytes=4 * MAX_PUBLIC_KEY_BYTES)}
    except HeaderError:
        raise OpenPGPKeyError(
            f"{source}: gpg exported the key in a form tiprelay cannot read."
        ) from None
    if TAG_USER_ATTRIBUTE in tags:
        raise OpenPGPKeyError(
            f"{source}: OpenPGP key {key.fingerprint} carries a photo ID: a picture of its "
            "holder, which the relay would show to every visitor. Remove it (gpg --edit-key "
            "FINGERPRINT, then uid N for the photo, deluid, save) and export the key again."
        )


def minimal_public_key(
    data: bytes, source: str, *, scratch: Path | None = None, expired_ok: bool = False
) -> OpenPGPPublicKey:
    """The key as the relay publishes it, checked: its ``armored`` is gpg's minimal
    export, without third-party signatures.

    Other people's signatures on a reviewer's key tell who vouched for them,
    which the relay's page and a seized server must not show. gpg's
    ``export-minimal`` keeps only the self-signatures that make the key usable.
    The user IDs stay (gpg and OpenPGP.js need one): the reviewer is told. A
    photo ID is refused. ``expired_ok`` as for inspect_public_key.
    """
    key = inspect_public_key(data, source, scratch=scratch, expired_ok=expired_ok)
    if key.expires is not None and key.expires <= time.time():
        # Expired (only with expired_ok): gpg's minimal export would drop its
        # expired subkeys. Such a key is never published nor encrypted to (the
        # relay leaves its reviewer out of the sealing set), so it is kept as
        # given until the reviewer replaces it with the renewed key.
        return key
    home = Path(tempfile.mkdtemp(prefix="tiprelay-gpg-", dir=scratch))
    try:
        gpg = open_gpg(home, env=quiet_environment(home), options=NO_DAEMON_OPTIONS)
        imported = gpg.import_keys(key.armored)
        if not imported.count:
            raise OpenPGPKeyError(f"{source}: gpg could not import the key.")
        binary = gpg.export_keys([key.fingerprint], armor=False, minimal=True)
        exported = gpg.export_keys([key.fingerprint], armor=True, minimal=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    raw = binary if isinstance(binary, bytes) else binary.encode("latin-1")
    _refuse_photo_ids(raw, key, source)
    minimal = (exported if isinstance(exported, str) else exported.decode("ascii")).encode("ascii")
    published = inspect_public_key(minimal, source, scratch=scratch, expired_ok=expired_ok)
    if published.fingerprint != key.fingerprint:
        raise OpenPGPKeyError(f"{source}: the minimized key is not the same key.")
    return published


def inspect_public_key_file(path: Path, *, scratch: Path | None = None) -> OpenPGPPublicKey:
    """inspect_public_key on a file, bounded in size."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PUBLIC_KEY_BYTES + 1)
    except OSError as exc:
        raise OpenPGPKeyError(f"{path} cannot be read: {exc.strerror}.") from None
    return inspect_public_key(data, str(path), scratch=scratch)


__all__ = [
    "GpgError",
    "OpenPGPKeyError",
    "OpenPGPKeyExpired",
    "OpenPGPPublicKey",
    "inspect_public_key",
    "inspect_public_key_file",
    "minimal_public_key",
]
