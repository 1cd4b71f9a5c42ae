"""Bearer-token authentication and per-queue scope checks.

A token is looked up by comparing the sha256 digest of what the client sent with every
configured digest using ``hmac.compare_digest`` (no early exit), so neither the comparison nor
the lookup leaks how much of a token was right.

Scopes (``server.settings.parse_grant``) name queue globs: ``read:analysis-*``,
``write:wallet-operations``, ``admin:*``; a plain ``read`` means ``read:*``. ``admin`` implies
``write``, ``read`` and ``meta``; ``read`` implies ``meta`` (read without payloads, results
and errors). Every route checks the scope against the queue it touches.

Status codes: no or unknown token -> 401 with ``WWW-Authenticate``; too many wrong tokens
from one address -> 429; a known token without the scope for that queue -> 403.

With no tokens configured, auth is off and every request acts with all scopes, but only
loopback clients are served, and only requests a web page cannot forge: the Host (and any
Origin) must name this server, writes must be ``application/json``, and proxy headers are
refused unless the peer is a trusted proxy (see ``LoopbackGuard``).
"""

from __future__ import annotations

import fnmatch
import hmac
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request

from server.errors import ApiError
from server.limits import RateLimiter
from server.settings import ApiToken, Grant, ServerSettings, hash_token, is_loopback

IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "write", "read", "meta"}),
    "write": frozenset({"write"}),
    "read": frozenset({"read", "meta"}),
    "meta": frozenset({"meta"}),
}
_EVERYTHING = (Grant(kind="admin"),)
_PROXY_HEADERS = ("forwarded", "x-real-ip")
_UNSAFE = frozenset({"POST", "PUT", "PATCH"})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: ``key`` identifies the caller for rate limits, quotas and SSE caps,
    ``name`` is what logs and audit records show (never the secret)."""

    key: str
    name: str
    grants: tuple[Grant, ...]

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(kind for g in self.grants for kind in IMPLIED[g.kind])

    def allows(self, scope: str, queue: str | None = None) -> bool:
        """``scope`` on ``queue``; with ``queue`` None, on every queue (a ``*`` grant)."""
        for grant in self.grants:
            if scope not in IMPLIED[grant.kind]:
                continue
            if grant.pattern == "*" or (
                queue is not None and fnmatch.fnmatchcase(queue, grant.pattern)
            ):
                return True
        return False

    def allows_some(self, scope: str) -> bool:
        """``scope`` on at least one queue pattern (the route then filters per queue)."""
        return any(scope in IMPLIED[g.kind] for g in self.grants)


def insufficient(scope: str, queue: str | None) -> ApiError:
    where = f" for queue {queue!r}" if queue else " for every queue"
    return ApiError(
        403,
        "insufficient_scope",
        f"this token lacks the '{scope}' scope{where}",
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="streamq", error="insufficient_scope", scope="{scope}"'
            )
        },
    )


def client_address(request: Request, trusted: frozenset[str]) -> str:
    """The client's address: the peer's, or for a trusted proxy the address it forwarded
    (the last ``X-Forwarded-For`` entry, else ``X-Real-IP``)."""
    peer = request.client.host if request.client else ""
    if peer in trusted:
        forwarded = request.headers.get("x-forwarded-for") or request.headers.get("x-real-ip")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return peer or "unknown"


def is_proxied(request: Request) -> bool:
    return any(
        name in _PROXY_HEADERS or name.startswith("x-forwarded-") for name in request.headers
    )


class Authenticator:
    """Resolves the ``Authorization`` header of a request into a Principal."""

    def __init__(self, settings: ServerSettings) -> None:
        self._tokens: tuple[ApiToken, ...] = settings.tokens
        self.trusted = frozenset(settings.trusted_proxies)
        self.loopback = LoopbackGuard(settings)
        self.failures = RateLimiter(
            settings.failed_auth_per_minute / 60.0, settings.failed_auth_burst
        )

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def identify(self, request: Request) -> Principal:
        """The caller, or ApiError 401 when a token is required and missing or unknown
        (429 once an address sent too many wrong ones)."""
        if not self._tokens:
            host = self.loopback.check(request)
            return Principal(key=f"anonymous@{host}", name="anonymous", grants=_EVERYTHING)
        address = client_address(request, self.trusted)
        if self.failures.exhausted(address):
            raise self.failures.refusal(address, "too many failed authentications")
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise ApiError(
                401,
                "unauthorized",
                "missing bearer token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="streamq"'},
            )
        digest = hash_token(secret)
        found: ApiToken | None = None
        for token in self._tokens:
            # Compare against every token, keep going after a match: constant work per request.
            if hmac.compare_digest(token.digest, digest):
                found = token
        if found is None:
            self.failures.take(address)
            raise ApiError(
                401,
                "invalid_token",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="streamq", error="invalid_token"'},
            )
        return Principal(key=found.digest[:16], name=found.name, grants=found.grants)


class LoopbackGuard:
    """What a request must look like to be served without tokens (DNS rebinding, CSRF and
    same-host proxies are the threats: a web page can make a browser send requests to
    127.0.0.1, and a proxy on this host forwards requests from anywhere)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.trusted = frozenset(settings.trusted_proxies)
        self.extra_hosts = frozenset(h.lower() for h in settings.allowed_hosts)

    def check(self, request: Request) -> str:
        """The client's address, or ApiError 403/415 for a request that may be forged."""
        peer = request.client.host if request.client else ""
        if is_proxied(request) and peer not in self.trusted:
            raise ApiError(
                403,
                "proxied_request",
                "a request through a proxy needs a token (or the proxy in "
                "STREAMQ_TRUSTED_PROXIES): no API tokens are configured",
            )
        client = client_address(request, self.trusted) if peer else ""
        if client and not is_loopback(client):
            raise ApiError(
                403,
                "auth_required",
                "no API tokens are configured, so only loopback clients are served",
            )
        allowed = self._hosts(request)
        host = request.headers.get("host", "").lower()
        if host not in allowed:
            raise ApiError(
                403,
                "invalid_host",
                f"Host {host!r} does not name this server (DNS rebinding?); "
                "add it to STREAMQ_ALLOWED_HOSTS if it should",
            )
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() not in allowed:
            raise ApiError(403, "cross_origin", f"requests from {origin!r} are not served")
        if request.method in _UNSAFE:
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "without API tokens, writes must be sent as 'Content-Type: application/json'",
                )
        return client or "local"

    def _hosts(self, request: Request) -> frozenset[str]:
        server = request.scope.get("server") or ("127.0.0.1", 80)
        port = server[1]
        names = {"localhost", "127.0.0.1", "[::1]", str(server[0]).lower(), *self.extra_hosts}
        names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
        hosts = {f"{n}:{port}" for n in names}
        if port in (80, None):
            hosts |= names
        return frozenset(hosts | self.extra_hosts)
