"""C2SP CCTV age test vectors (npm package ``cctv-age``): one parametrised test.

Each vector names its expected outcome in its own header. Vectors whose
identities we do not implement (post-quantum hybrid keys) are listed as not
applicable rather than counted as passes; the count of both is asserted so a
change in the vector set is noticed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.crypto import errors
from relay.crypto.decrypt import decrypt_bytes
from relay.crypto.identities import ScryptIdentity, X25519Identity
from relay.crypto.unwrap import Identity
from tests.support_node import NODE

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_ERRORS: dict[str, type[Exception]] = {
    "header failure": errors.HeaderError,
    "HMAC failure": errors.HeaderMacError,
    "payload failure": errors.PayloadError,
    "no match": errors.NoIdentityMatchError,
    "armor failure": errors.ArmorError,
}


@dataclass
class Vector:
    name: str
    expect: str
    payload_sha256: str | None
    identities: list[str]
    passphrases: list[str]
    body: bytes


def _load_vectors() -> dict[str, bytes]:
    # cctv-age is an ES module: imported, never require()d.
    script = (
        "import * as v from 'cctv-age';const o={};"
        "for (const k of Object.keys(v)) o[k]=Buffer.from(v[k]).toString('base64');"
        "process.stdout.write(JSON.stringify(o));"
    )
    out = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    import base64

    return {name: base64.b64decode(data) for name, data in json.loads(out).items()}


def _parse(name: str, raw: bytes) -> Vector:
    head, body = raw.split(b"\n\n", 1)
    fields: dict[str, list[str]] = {}
    for line in head.decode().splitlines():
        key, value = line.split(": ", 1)
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(
        name=name,
        expect=fields["expect"][0],
        payload_sha256=fields.get("payload", [None])[0],
        identities=fields.get("identity", []),
        passphrases=fields.get("passphrase", []),
        body=body,
    )


VECTORS = [_parse(name, raw) for name, raw in sorted(_load_vectors().items())]


def _identities(vector: Vector) -> list[Identity] | None:
    found: list[Identity] = [ScryptIdentity(p.encode()) for p in vector.passphrases]
    for text in vector.identities:
        if not text.startswith("AGE-SECRET-KEY-1"):
            return None  # a key type we do not implement (e.g. ML-KEM hybrid)
        found.append(X25519Identity.parse(text))
    return found


APPLICABLE = [v for v in VECTORS if _identities(v) is not None]
NOT_APPLICABLE = [v.name for v in VECTORS if _identities(v) is None]


def test_vector_set_is_the_one_we_reviewed() -> None:
    print(f"\nCCTV age vectors: {len(APPLICABLE)} applicable, {len(NOT_APPLICABLE)} "
          f"not applicable (identity types not implemented: {', '.join(NOT_APPLICABLE)})")
    assert len(VECTORS) == 143
    assert len(APPLICABLE) == 124
    assert all("hybrid" in name for name in NOT_APPLICABLE)


@pytest.mark.parametrize("vector", APPLICABLE, ids=[v.name for v in APPLICABLE])
def test_cctv_vector_gives_its_expected_outcome(vector: Vector) -> None:
    identities = _identities(vector)
    assert identities is not None
    if vector.expect == "success":
        plaintext = decrypt_bytes(vector.body, identities)
        assert hashlib.sha256(plaintext).hexdigest() == vector.payload_sha256
        return
    expected = EXPECTED_ERRORS[vector.expect]
    with pytest.raises(errors.AgeError) as caught:
        decrypt_bytes(vector.body, identities)
    assert isinstance(caught.value, expected), (vector.expect, repr(caught.value))
    # HMAC and payload failures are distinct from header failures, and a
    # no-match must not be reported for a malformed file.
    if expected is errors.HeaderError:
        assert not isinstance(caught.value, errors.NoIdentityMatchError)
