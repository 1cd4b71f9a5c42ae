"""The outermost middleware: refuses ambiguous message framing, adds security headers and
writes the access log line that names the caller.

- A request carrying both ``Content-Length`` and ``Transfer-Encoding`` could be framed two
  ways (request smuggling behind a proxy): it is answered 400 and the connection closed
  (RFC 9112 §6.3).
- Every response says ``X-Content-Type-Options: nosniff``; HTML responses also get a strict
  Content-Security-Policy (nothing from elsewhere, no framing) unless they set their own.
- ``server.access`` logs one line per request: method, path, status, time, the caller (the
  token's name, never the token) and the client address.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ErrorDetail, ErrorResponse

access_log = logging.getLogger("server.access")
log = logging.getLogger(__name__)

CALLER_KEY = "streamq.caller"
HTML_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
_HTML = [(b"x-frame-options", b"DENY")]


class GuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        names = {name for name, _ in scope["headers"]}
        if b"content-length" in names and b"transfer-encoding" in names:
            log.info("refusing a request with both Content-Length and Transfer-Encoding")
            status = 400
            await _refuse_framing(send)
            _log_access(scope, status, started)
            return

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [h for h in _ALWAYS if h[0] not in present]
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    extra += [h for h in _HTML if h[0] not in present]
                    if b"content-security-policy" not in present:
                        extra.append((b"content-security-policy", HTML_POLICY.encode()))
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        finally:
            _log_access(scope, status or 500, started)


async def _refuse_framing(send: Send) -> None:
    import msgspec

    body = msgspec.json.encode(
        ErrorResponse(
            error=ErrorDetail(
                code="ambiguous_framing",
                message="a request may carry Content-Length or Transfer-Encoding, not both",
            )
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *_ALWAYS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log_access(scope: Scope, status: int, started: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "-"
    access_log.info(
        '%s "%s %s" %d %.1fms caller=%s',
        peer,
        scope["method"],
        scope["path"],
        status,
        (time.perf_counter() - started) * 1000,
        scope.get(CALLER_KEY, "-"),
    )
