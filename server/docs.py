"""``/docs``: a plain HTML page listing the endpoints of the OpenAPI document.

Rendered on the server with no scripts or stylesheets from elsewhere (the machines running
streamq may have no internet access).
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}code{font-size:90%}.m{font-weight:bold;font-family:monospace}
.get{color:#06c}.post{color:#080}.delete{color:#c00}small{color:#666}
"""


def _schema_name(schema: dict[str, Any] | None) -> str:
    ref = (schema or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""


def render_docs(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    rows: list[str] = []
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            success = [
                f"{status} {_schema_name(resp.get('content', {}).get('application/json', {}).get('schema'))}"
                for status, resp in op.get("responses", {}).items()
                if status.startswith("2")
            ]
            rows.append(
                "<tr>"
                f'<td class="m {escape(method)}">{escape(method.upper())}</td>'
                f"<td><code>{escape(path)}</code><br><small>{escape(op.get('summary', ''))}</small>"
                f"<br>{escape(op.get('description', ''))}</td>"
                f"<td>{escape(op.get('x-required-scope') or 'open')}</td>"
                f"<td>{escape(_schema_name(body.get('schema')))}</td>"
                f"<td>{escape(', '.join(success))}</td>"
                "</tr>"
            )
    schemas = document.get("components", {}).get("schemas", {})
    schema_list = "".join(f"<li><code>{escape(name)}</code></li>" for name in sorted(schemas))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(info.get('title', 'API'))} API <small>{escape(info.get('version', ''))}</small></h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>The machine-readable schema is <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>scope</th><th>body</th><th>returns</th></tr>"
        + "".join(rows)
        + f"</table><h2>Schemas</h2><ul>{schema_list}</ul></body></html>"
    )
