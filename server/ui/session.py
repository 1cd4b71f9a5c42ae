"""Who is looking at the dashboard, CSRF protection, and the security headers of its pages.

A browser cannot send ``Authorization`` headers on page loads or ``EventSource`` streams, so
the dashboard keeps the API token the user typed in an HttpOnly, SameSite=Strict cookie
scoped to ``/ui``. Every request under ``/ui`` that acts re-presents that token to the normal
API checks (``server.auth``): a read token sees, an admin token acts, and nothing about scopes
is decided here.

CSRF: SameSite=Strict keeps the cookie off cross-site requests in current browsers; on top of
it every state-changing request must carry the double-submit token (the ``streamq_csrf``
cookie echoed in the ``X-CSRF-Token`` header or a ``csrf`` form field) and, when the browser
says where it comes from (``Origin``, ``Sec-Fetch-Site``), come from this origin.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote, unquote

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import Principal
from server.context import server_state
from server.errors import ApiError

SESSION_COOKIE = "streamq_session"
CSRF_COOKIE = "streamq_csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No inline script anywhere: every script is a file under /ui/static.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI sets style attributes in the markup it renders; scripts stay file-only.
DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def security_headers(csp: str = PAGE_CSP) -> dict[str, str]:
    return {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
    }


class SecurityHeaders:
    """Adds the security headers to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp, csp: str = PAGE_CSP) -> None:
        self.app = app
        self.headers = security_headers(csp)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_bearer(scope: Scope, token: str | None) -> dict[str, Any]:
    """A copy of ``scope`` whose headers carry ``token`` as a bearer token and no cookies."""
    headers = [
        (k, v) for k, v in scope.get("headers", []) if k not in (b"authorization", b"cookie")
    ]
    if token:
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1", "replace")))
    return {**scope, "headers": headers}


def principal_for(request: Request, token: str | None = None) -> Principal:
    """The caller of a dashboard request: the session token (or ``token``) checked by the
    API's own authenticator. Raises ApiError 401 (no or bad token) or 403 (auth off and the
    client is not on loopback)."""
    state = server_state(request)
    if token is None:
        token = session_token(request)
    if state.auth.enabled and not token:
        raise ApiError(401, "unauthorized", "sign in with an API token")
    return state.auth.identify(Request(with_bearer(request.scope, token)))


def session_token(request: Request | Scope) -> str | None:
    """The token stored in this browser's session cookie, if any."""
    req = request if isinstance(request, Request) else Request(request)
    raw = req.cookies.get(SESSION_COOKIE)
    return unquote(raw) if raw else None


def csrf_token(request: Request) -> str:
    """The double-submit token of this browser (a fresh one if it has none yet)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if len(current) >= 32 else secrets.token_urlsafe(32)


def set_csrf_cookie(headers: MutableHeaders, token: str, secure: bool) -> None:
    # Readable by the page's script (it echoes it in a header); useless to another site.
    headers.append(
        "set-cookie",
        f"{CSRF_COOKIE}={token}; Path={COOKIE_PATH}; SameSite=Strict"
        + ("; Secure" if secure else ""),
    )


def session_cookie(token: str, secure: bool) -> str:
    return (
        f"{SESSION_COOKIE}={quote(token, safe='')}; Path={COOKIE_PATH}; Max-Age={SESSION_SECONDS}; "
        "HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    )


def cleared_session_cookie() -> str:
    return f"{SESSION_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict"


def check_same_origin(request: Request | Scope) -> None:
    """ApiError 403 ``csrf`` when the browser says the request comes from another site."""
    req = request if isinstance(request, Request) else Request(request)
    site = req.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, "csrf", "cross-site requests may not act on the dashboard")
    origin = req.headers.get("origin")
    if origin is not None:
        host = req.headers.get("host", "")
        if origin == "null" or origin.split("://", 1)[-1] != host:
            raise ApiError(403, "csrf", f"origin {origin!r} may not act on this dashboard")


def check_csrf(request: Request, submitted: str | None) -> None:
    """ApiError 403 ``csrf`` unless the request is same-origin and ``submitted`` (header or
    form field) equals this browser's CSRF cookie."""
    check_same_origin(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise ApiError(403, "csrf", "missing or wrong CSRF token: reload the page and try again")


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"
