"""Who may use the reviewer API: requests signed with a current reviewer's Ed25519 key.

Each request must carry an RFC 9421 signature (see ``relay.httpsig``) by a key
listed in ``keys/`` *now* (the keyring holder is read on every request, so a
key removed and reloaded with SIGHUP stops working at once), created within
``signature_max_age_seconds``, with a nonce not seen in that window, and a
``Content-Digest`` that matches the body actually received.

Every failure gets the same 401 answer, whatever the reason and whether or not
the requested submission exists; only the failure kind is logged.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from relay import httpsig
from relay.crypto import signing
from relay.crypto.errors import KeyFormatError
from relay.log import get_logger
from relay.server.appkeys import CONFIG, KEYRING
from relay.server.small_body import read_small_body

MAX_SIGNED_BODY_BYTES = 64 * 1024
"""The reviewer API takes no uploads; a larger body is refused unread."""
NONCE_MEMORY_CAPACITY = 100_000
"""Nonces remembered at most (about 10 MB); when full, requests are refused, never replayable."""

UNAUTHORIZED_BODY = b'{"error": "unauthorized"}\n'
_REPLAYED = "replayed_nonce"
_NONCE_MEMORY_FULL = "nonce_memory_full"
_BODY_TOO_LARGE = "body_too_large"
_BODY_TOO_SLOW = "body_too_slow"

_log = get_logger("relay.server.reviewer_auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NonceMemory:
    """Nonces seen recently, each forgotten once its signature is too old to accept anyway."""

    def __init__(self, capacity: int = NONCE_MEMORY_CAPACITY) -> None:
        self.capacity = capacity
        self._expiry_by_nonce: dict[tuple[str, str], float] = {}
        self._expiry_heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry_by_nonce)

    def remember(self, key_id: str, nonce: str, forget_after: float, now: float) -> str | None:
        """Record a nonce; None if it is new, else the failure kind (replay or full)."""
        self._forget_expired(now)
        entry = (key_id, nonce)
        if entry in self._expiry_by_nonce:
            return _REPLAYED
        if len(self._expiry_by_nonce) >= self.capacity:
            return _NONCE_MEMORY_FULL
        self._expiry_by_nonce[entry] = forget_after
        heapq.heappush(self._expiry_heap, (forget_after, entry))
        return None

    def _forget_expired(self, now: float) -> None:
        while self._expiry_heap and self._expiry_heap[0][0] < now:
            _, entry = heapq.heappop(self._expiry_heap)
            self._expiry_by_nonce.pop(entry, None)


NONCE_MEMORY: web.AppKey[NonceMemory] = web.AppKey("reviewer_nonce_memory", NonceMemory)


@dataclass(frozen=True)
class AuthenticatedReviewer:
    """The reviewer whose current key signed a request."""

    name: str
    # Header fields the signature covers beyond the standard set (lower case).
    covered_headers: frozenset[str] = frozenset()


REVIEWER: web.RequestKey[AuthenticatedReviewer] = web.RequestKey("reviewer", AuthenticatedReviewer)
# For a streamed body (see require_reviewer_signature_streamed): the signed
# digest the handler must check the body against before acting on it.
SIGNED_BODY_DIGEST: web.RequestKey[httpsig.StreamedBodyDigest] = web.RequestKey(
    "signed_body_digest", httpsig.StreamedBodyDigest
)


def unauthorized() -> web.Response:
    """The one answer for every authentication failure."""
    return web.Response(
        status=401,
        body=UNAUTHORIZED_BODY,
        content_type="application/json",
        headers={"WWW-Authenticate": 'Signature tag="tiprelay-reviewer-api"'},
    )


def require_reviewer_signature(handler: Handler) -> Handler:
    """Wrap a handler so it runs only for a request signed by a current reviewer."""

    @wraps(handler)
    async def signed_handler(request: web.Request) -> web.StreamResponse:
        failure, reviewer = await authenticate(request)
        if reviewer is None:
            _log.warning("reviewer_auth_failed", error_type=failure)
            return unauthorized()
        request[REVIEWER] = reviewer
        return await handler(request)

    return signed_handler


def require_reviewer_signature_streamed(handler: Handler) -> Handler:
    """Like require_reviewer_signature, for a body too large to read first (a reply).

    The signature over the headers is checked before any of the body is read;
    the handler receives the signed digest (``request[SIGNED_BODY_DIGEST]``),
    feeds it the body as it streams, and must refuse the request, keeping
    nothing, unless it matches at the end.
    """

    @wraps(handler)
    async def signed_handler(request: web.Request) -> web.StreamResponse:
        failure, reviewer, digest = _authenticate_headers(request)
        if reviewer is None or digest is None:
            _log.warning("reviewer_auth_failed", error_type=failure)
            return unauthorized()
        request[REVIEWER] = reviewer
        request[SIGNED_BODY_DIGEST] = digest
        return await handler(request)

    return signed_handler


def _public_key_lookup(
    request: web.Request,
) -> tuple[dict[bytes, str], Callable[[str], bytes | None]]:
    keyring = request.app[KEYRING].current
    names_by_key = {
        reviewer.api_key: reviewer.name
        for reviewer in keyring.reviewers
        if reviewer.api_key is not None
    }

    def public_key_for(key_id: str) -> bytes | None:
        try:
            public_key = signing.parse_public_key(key_id)
        except KeyFormatError:
            return None
        return public_key if public_key in names_by_key else None

    return names_by_key, public_key_for


def _authenticate_headers(
    request: web.Request,
) -> tuple[str, AuthenticatedReviewer | None, httpsig.StreamedBodyDigest | None]:
    names_by_key, public_key_for = _public_key_lookup(request)
    max_age = int(request.app[CONFIG].signature_max_age_seconds)
    now = time.time()
    try:
        verified, digest = httpsig.verify_request_headers(
            request.method,
            f"{request.scheme}://{request.host}{request.raw_path}",
            [(name, value) for name, value in request.headers.items()],
            public_key_for,
            max_age_seconds=max_age,
            now=now,
        )
    except httpsig.SignatureFailure as failure:
        return failure.kind, None, None
    problem = _remember_nonce(request, verified, max_age, now)
    if problem is not None:
        return problem, None, None
    reviewer = AuthenticatedReviewer(
        name=names_by_key[verified.public_key], covered_headers=verified.covered_headers
    )
    return "", reviewer, digest


def _remember_nonce(
    request: web.Request, verified: httpsig.VerifiedSignature, max_age: int, now: float
) -> str | None:
    # Remembered until the signature is too old to pass the window check anyway.
    forget_after = verified.created + max_age + 1
    # Keyed by the key's bytes: two spellings of one key id share their nonces.
    signer = verified.public_key.hex()
    return request.app[NONCE_MEMORY].remember(signer, verified.nonce, forget_after, now)


async def authenticate(request: web.Request) -> tuple[str, AuthenticatedReviewer | None]:
    """(failure kind, None) or ("", the reviewer) for this request."""
    try:
        body = await read_small_body(request, MAX_SIGNED_BODY_BYTES)
    except TimeoutError:
        return _BODY_TOO_SLOW, None
    if body is None:
        return _BODY_TOO_LARGE, None
    names_by_key, public_key_for = _public_key_lookup(request)
    max_age = int(request.app[CONFIG].signature_max_age_seconds)
    now = time.time()
    try:
        verified = httpsig.verify_request(
            request.method,
            f"{request.scheme}://{request.host}{request.raw_path}",
            [(name, value) for name, value in request.headers.items()],
            body,
            public_key_for,
            max_age_seconds=max_age,
            now=now,
        )
    except httpsig.SignatureFailure as failure:
        return failure.kind, None
    problem = _remember_nonce(request, verified, max_age, now)
    if problem is not None:
        return problem, None
    return "", AuthenticatedReviewer(
        name=names_by_key[verified.public_key], covered_headers=verified.covered_headers
    )
