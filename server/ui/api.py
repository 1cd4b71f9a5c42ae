"""``/ui/api/...``: the JSON API as the dashboard's scripts call it.

A request to ``/ui/api/<rest>`` is served by the very endpoint at ``/v1/<rest>``, with the
session cookie turned into the bearer token the API expects. So every button of the dashboard
is an API call a script could make too, with the same scope checks, errors and audit; this
layer only adds what a cookie needs: the CSRF check on anything that is not a read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from server.errors import ApiError, render
from server.ui.session import CSRF_HEADER, SAFE_METHODS, check_csrf, session_token, with_bearer

PREFIX = "/ui/api"


class ApiBridge:
    """Re-enters the application with the path under ``/v1`` and the session's token."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope)
        if scope["method"] not in SAFE_METHODS:
            try:
                check_csrf(request, request.headers.get(CSRF_HEADER))
            except ApiError as exc:
                await render(exc)(scope, receive, send)
                return
        path: str = scope["path"]
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        target = "/v1" + rest
        forwarded = with_bearer(scope, session_token(request))
        forwarded.update(path=target, raw_path=target.encode(), root_path="")
        await scope["app"](forwarded, receive, send)
