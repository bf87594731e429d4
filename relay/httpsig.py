"""Signed reviewer API requests: HTTP Message Signatures (RFC 9421) + Content-Digest (RFC 9530).

The protocol (signature base, ``Signature-Input`` / ``Signature`` structured
fields, ``Content-Digest``) comes from the ``http-message-signatures`` package;
the Ed25519 maths comes from ``relay.crypto.signing``. The package's algorithm
interface is pluggable, so ``_RelayEd25519`` below hands every sign and verify
to pynacl: the package's own ``cryptography``-backed classes are never used.

Every request signature covers, under the label ``tiprelay``::

    ("@method" "@authority" "@path" "@query" "content-digest")
        ;created=<unix time>;keyid="ed25519:<base64>";alg="ed25519"
        ;nonce="<random>";tag="tiprelay-reviewer-api"

``@path``/``@query``/``@authority`` rather than ``@target-uri``: a TLS-terminating
proxy or an onion service changes the scheme the relay sees, not these.
The key id is the signer's public key in the form operators put in ``keys/``,
so a reviewer needs no name agreed with the operator to sign.

Replay memory and the time window are the server's policy
(``relay.server.reviewer_auth``); this module only proves who signed what.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)

from relay.crypto import signing

SIGNATURE_LABEL = "tiprelay"
SIGNATURE_TAG = "tiprelay-reviewer-api"
COVERED_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest")
CLOCK_SKEW_SECONDS = 30
"""How far in the future a ``created`` time may lie (the signer's clock runs ahead)."""
MAX_NONCE_CHARS = 64


class SignatureFailure(Exception):
    """A request signature did not verify; ``kind`` says why (for logs, never for clients)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# The failure kinds, one word each, safe to log.
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
INVALID = "invalid_signature"
STALE = "stale"
DIGEST_MISMATCH = "digest_mismatch"


@dataclass(frozen=True)
class VerifiedSignature:
    """What a valid signature proves: who signed, when, with which nonce."""

    key_id: str
    public_key: bytes
    created: int
    nonce: str
    # Header fields the signature covers beyond COVERED_COMPONENTS (lower case).
    covered_headers: frozenset[str] = frozenset()


class _RelayEd25519(HTTPSignatureAlgorithm):
    """Ed25519 for http-message-signatures, computed by relay.crypto.signing (pynacl)."""

    algorithm_id = "ed25519"

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        if public_key is not None and not isinstance(public_key, bytes):
            raise HTTPMessageSignaturesException("Unexpected public key type")
        if private_key is not None and not isinstance(private_key, signing.SigningKey):
            raise HTTPMessageSignaturesException("Unexpected private key type")
        self.public_key: bytes | None = public_key
        self.private_key: signing.SigningKey | None = private_key

    def sign(self, message: bytes) -> bytes:
        if self.private_key is None:
            raise HTTPMessageSignaturesException("No signing key")
        return self.private_key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> None:
        if self.public_key is None or not signing.verify(self.public_key, message, signature):
            raise InvalidSignature("Ed25519 signature does not verify")


class _OneKeySigner(HTTPSignatureKeyResolver):
    def __init__(self, key: signing.SigningKey) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> signing.SigningKey:
        return self.key

    def resolve_public_key(self, key_id: str) -> bytes | None:
        return self.key.public_bytes


class _LookupResolver(HTTPSignatureKeyResolver):
    """Public keys by key id; an unknown id still costs a full verification."""

    # Verifying against a random key that nobody holds takes the same time as a
    # real verification, so response time does not tell which key ids exist.
    _decoy = signing.SigningKey.generate().public_bytes

    def __init__(self, public_key_for: Callable[[str], bytes | None]) -> None:
        self.public_key_for = public_key_for
        self.unknown = False
        self.resolved: bytes | None = None

    def resolve_public_key(self, key_id: str) -> bytes:
        public_key = self.public_key_for(key_id)
        if public_key is None:
            self.unknown = True
            return self._decoy
        self.resolved = public_key
        return public_key

    def resolve_private_key(self, key_id: str) -> signing.SigningKey:
        raise KeyError(key_id)


class _Verifier(HTTPMessageVerifier):
    max_clock_skew = datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)


class _FieldLines:
    """Header field lines as the package reads them (read-only, order kept)."""

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self._lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._lines)

    def __setitem__(self, name: str, value: str) -> None:
        raise TypeError("read-only")

    def __delitem__(self, name: str) -> None:
        raise TypeError("read-only")


@dataclass
class _Message:
    method: str
    url: str
    headers: Any


def key_id_for(public_key: bytes) -> str:
    """The ``keyid`` a reviewer signs with: the ``ed25519:<base64>`` text of the public key."""
    return signing.format_public_key(public_key)


def sign_request(
    method: str,
    url: str,
    body: bytes,
    key: signing.SigningKey,
    *,
    created: float | None = None,
    nonce: str | None = None,
    signed_fields: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign this request: Content-Digest, Signature-Input, Signature.

    ``url`` is the absolute, already percent-encoded URL the request goes to.
    ``signed_fields`` are further header fields (lower-case names) the request
    carries and the signature covers; they are returned with the others.
    """
    headers: dict[str, str] = dict(signed_fields or {})
    extra = tuple(name.lower() for name in (signed_fields or {}))
    message = _Message(method=method.upper(), url=url, headers=headers)
    signer = HTTPMessageSigner(signature_algorithm=_RelayEd25519, key_resolver=_OneKeySigner(key))
    when = time.time() if created is None else created
    signer.sign(
        message,
        key_id=key_id_for(key.public_bytes),
        created=datetime.datetime.fromtimestamp(int(when), tz=datetime.UTC),
        nonce=nonce if nonce is not None else secrets.token_urlsafe(18),
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_TAG,
        covered_component_ids=COVERED_COMPONENTS + extra,
        body=body,
    )
    return headers


def _verify_headers(
    method: str,
    url: str,
    header_lines: Iterable[tuple[str, str]],
    public_key_for: Callable[[str], bytes | None],
) -> tuple[_Message, _Verifier, list[Any], bytes]:
    """The signature over the headers, checked: (message, verifier, results, public key)."""
    lines = _FieldLines(header_lines)
    if "signature" not in lines or "signature-input" not in lines:
        raise SignatureFailure(UNSIGNED)
    message = _Message(method=method, url=url, headers=lines)
    resolver = _LookupResolver(public_key_for)
    verifier = _Verifier(signature_algorithm=_RelayEd25519, key_resolver=resolver)
    try:
        results = verifier.verify(
            message,
            max_age=None,  # checked below, to tell a stale signature from a bad one
            expect_tag=SIGNATURE_TAG,
            require_components=COVERED_COMPONENTS,
        )
    except HTTPMessageSignaturesException:
        raise SignatureFailure(UNKNOWN_KEY if resolver.unknown else INVALID) from None
    except (ValueError, TypeError, UnicodeError):
        raise SignatureFailure(INVALID) from None
    if resolver.unknown or resolver.resolved is None or len(results) != 1:
        raise SignatureFailure(UNKNOWN_KEY if resolver.unknown else INVALID)
    return message, verifier, list(results), resolver.resolved


def _checked_parameters(
    result: Any, public_key: bytes, max_age_seconds: int, now: float | None
) -> VerifiedSignature:
    parameters = result.parameters
    created, nonce, key_id = parameters.get("created"), result.nonce, parameters.get("keyid")
    if not isinstance(created, int) or not isinstance(key_id, str):
        raise SignatureFailure(INVALID)
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= MAX_NONCE_CHARS:
        raise SignatureFailure(INVALID)
    current = time.time() if now is None else now
    if created < current - max_age_seconds or created > current + CLOCK_SKEW_SECONDS:
        raise SignatureFailure(STALE)
    covered = frozenset(
        identifier.strip('"')
        for identifier in result.covered_components
        if identifier.startswith('"')
        and identifier.endswith('"')
        and ";" not in identifier
        and not identifier.startswith('"@')
    ) - frozenset(COVERED_COMPONENTS)
    return VerifiedSignature(
        key_id=key_id,
        public_key=public_key,
        created=created,
        nonce=nonce,
        covered_headers=covered,
    )


def verify_request(
    method: str,
    url: str,
    header_lines: Iterable[tuple[str, str]],
    body: bytes,
    public_key_for: Callable[[str], bytes | None],
    *,
    max_age_seconds: int,
    now: float | None = None,
) -> VerifiedSignature:
    """Check a request's signature and body digest; raises SignatureFailure.

    ``url`` is the absolute URL as received (scheme, Host header, raw path and
    query); ``public_key_for`` maps a key id to a current public key or None.
    """
    message, verifier, results, public_key = _verify_headers(
        method, url, header_lines, public_key_for
    )
    try:
        verifier.verify_body(message, results, body)
    except HTTPMessageSignaturesException:
        raise SignatureFailure(DIGEST_MISMATCH) from None
    return _checked_parameters(results[0], public_key, max_age_seconds, now)


class StreamedBodyDigest:
    """The signed Content-Digest of a body too large to hold: fed chunk by chunk, then checked."""

    def __init__(self, expected: dict[str, bytes]) -> None:
        self._expected = expected
        self._hashes = {algorithm: hashlib.new(_DIGESTS[algorithm]) for algorithm in expected}

    def update(self, chunk: bytes) -> None:
        """Hash the next piece of the body."""
        for digest in self._hashes.values():
            digest.update(chunk)

    def matches(self) -> bool:
        """Whether every signed digest equals the body's (constant time)."""
        return all(
            hmac.compare_digest(self._hashes[algorithm].digest(), value)
            for algorithm, value in self._expected.items()
        )


_DIGESTS = {"sha-256": "sha256", "sha-512": "sha512"}
_DIGEST_MEMBER = re.compile(r"(sha-256|sha-512)=:([A-Za-z0-9+/=]{1,200}):")


def _signed_body_digests(result: Any) -> dict[str, bytes]:
    """The digests the signature covers (its content-digest component), by algorithm."""
    values = [
        value
        for identifier, value in result.covered_components.items()
        if identifier == '"content-digest"'
    ]
    if len(values) != 1:
        raise SignatureFailure(INVALID)
    digests: dict[str, bytes] = {}
    # RFC 9530 / RFC 8941 dictionary of byte sequences: "sha-256=:<base64>:, ...".
    for member in str(values[0]).split(","):
        match = _DIGEST_MEMBER.fullmatch(member.strip(" \t"))
        if match is None or match.group(1) in digests:
            raise SignatureFailure(DIGEST_MISMATCH)
        algorithm = match.group(1)
        try:
            value = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureFailure(DIGEST_MISMATCH) from None
        if len(value) != hashlib.new(_DIGESTS[algorithm]).digest_size:
            raise SignatureFailure(DIGEST_MISMATCH)
        digests[algorithm] = value
    return digests


def verify_request_headers(
    method: str,
    url: str,
    header_lines: Iterable[tuple[str, str]],
    public_key_for: Callable[[str], bytes | None],
    *,
    max_age_seconds: int,
    now: float | None = None,
) -> tuple[VerifiedSignature, StreamedBodyDigest]:
    """Check a request's signature before its (large) body is read; raises SignatureFailure.

    The body is not yet checked: feed it to the returned ``StreamedBodyDigest``
    while receiving it, and act on it only if ``matches()`` at the end.
    """
    _message, _verifier, results, public_key = _verify_headers(
        method, url, header_lines, public_key_for
    )
    digests = _signed_body_digests(results[0])
    verified = _checked_parameters(results[0], public_key, max_age_seconds, now)
    return verified, StreamedBodyDigest(digests)
