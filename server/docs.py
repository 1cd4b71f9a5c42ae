"""``/docs``: the OpenAPI document rendered by Swagger UI.

Swagger UI's files are vendored under ``server/ui/static/vendor/swagger-ui`` (copied from the
``swagger-ui-dist`` npm package with their licence), so the page works on machines without
internet access. No inline script: the page loads the bundle and ``docs.js``, which points it
at ``/openapi.json``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import HTMLResponse

from server.ui.session import DOCS_CSP, security_headers

_VENDOR = "/ui/static/vendor/swagger-ui"


def render_docs(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    title = escape(f"{info.get('title', 'streamq')} API")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title>"
        f"<link rel='stylesheet' href='{_VENDOR}/swagger-ui.css'>"
        "<link rel='stylesheet' href='/ui/static/docs.css'>"
        "</head><body>"
        "<nav class='docs-top'><a href='/ui/'>Dashboard</a> · "
        "<a href='/openapi.json'>openapi.json</a></nav>"
        "<div id='swagger-ui' data-url='/openapi.json'></div>"
        f"<noscript><h1>{title}</h1><p>The schema is at <a href='/openapi.json'>/openapi.json</a>."
        f"</p><ul>{_endpoints(document)}</ul></noscript>"
        f"<script src='{_VENDOR}/swagger-ui-bundle.js'></script>"
        "<script src='/ui/static/docs.js'></script>"
        "</body></html>"
    )


def _endpoints(document: dict[str, Any]) -> str:
    """Every endpoint as a list item: what a browser without scripts shows."""
    return "".join(
        f"<li><code>{escape(method.upper())} {escape(path)}</code> {escape(op.get('summary', ''))}</li>"
        for path, methods in document.get("paths", {}).items()
        for method, op in methods.items()
    )


def docs_response(document: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(render_docs(document), headers=security_headers(DOCS_CSP))
