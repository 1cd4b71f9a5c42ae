"""Bearer-token authentication and scope checks.

A token is looked up by comparing the sha256 digest of what the client sent with every
configured digest using ``hmac.compare_digest`` (no early exit), so neither the comparison nor
the lookup leaks how much of a token was right. ``admin`` implies ``read`` and ``write``.

Status codes: no or unknown token -> 401 with ``WWW-Authenticate``; a known token without the
scope the endpoint needs -> 403. With no tokens configured, auth is off and every request
acts with all scopes, but only loopback clients are served (the server also refuses to bind
anything but loopback then; see ``server.main``).
"""

from __future__ import annotations

import hmac

import msgspec
from starlette.requests import Request

from server.errors import ApiError
from server.settings import ApiToken, hash_token, is_loopback

_ALL_SCOPES = frozenset({"read", "write", "admin"})


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: ``key`` identifies the caller for rate limits and SSE caps."""

    key: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class Authenticator:
    """Resolves the ``Authorization`` header of a request into a Principal."""

    def __init__(self, tokens: tuple[ApiToken, ...]) -> None:
        self._tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def identify(self, request: Request) -> Principal:
        """The caller, or ApiError 401 when a token is required and missing or unknown.

        With auth off: every loopback client is ``anonymous`` with every scope; a client
        from elsewhere gets 403, since nothing vouches for it.
        """
        if not self._tokens:
            host = request.client.host if request.client else ""
            if host and not is_loopback(host):
                raise ApiError(
                    403,
                    "auth_required",
                    "no API tokens are configured, so only loopback clients are served",
                )
            return Principal(key=f"anonymous@{host or 'local'}", scopes=_ALL_SCOPES)
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
            raise ApiError(
                401,
                "invalid_token",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="streamq", error="invalid_token"'},
            )
        return Principal(key=found.digest[:16], scopes=found.scopes)

    def require(self, request: Request, scope: str | None) -> Principal | None:
        """The caller if it holds ``scope`` (None = open endpoint), else ApiError 401/403."""
        if scope is None:
            return None
        principal = self.identify(request)
        if not principal.allows(scope):
            raise ApiError(
                403,
                "insufficient_scope",
                f"this token lacks the '{scope}' scope",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="streamq", error="insufficient_scope", scope="{scope}"'
                    )
                },
            )
        return principal
