"""``/docs``: the API's reference page, rendered on the server from its OpenAPI schema.

No script, font or style sheet from anywhere (FastAPI's Swagger UI loads from a CDN and no
copy of it is installed here): one HTML page with every path, its parameters and its
responses, and a link to ``/openapi.json`` for tools. Its Content-Security-Policy forbids
loading anything at all, so a browser opening it makes no other request.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;
color:#1d2330;background:#fafbfc}
h1{font-size:1.6em}h2{font-size:1.15em;margin:1.6em 0 .3em;font-family:monospace}
.m{display:inline-block;min-width:3.5em;padding:.1em .4em;border-radius:3px;color:#fff;
background:#2d6cdf;font-size:.85em;text-align:center}.ws{background:#7b3fb8}
table{border-collapse:collapse;width:100%;margin:.4em 0}td,th{border:1px solid #d5d9e0;
padding:.3em .5em;text-align:left;vertical-align:top}th{background:#eef1f5}
code{background:#eef1f5;padding:0 .25em;border-radius:2px}.d{color:#4a5263}
"""


def _schema_text(schema: dict) -> str:
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_schema_text(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    text = str(schema.get("type", "object"))
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "maxLength") if k in schema]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _parameters(op: dict) -> str:
    params = op.get("parameters") or []
    if not params:
        return ""
    rows = []
    for p in params:
        schema = p.get("schema", {})
        default = f"default <code>{escape(str(schema['default']))}</code>" \
            if "default" in schema else ("required" if p.get("required") else "")
        rows.append(f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                    f"<td>{escape(_schema_text(schema))}</td><td>{default}</td>"
                    f"<td>{escape(p.get('description', ''))}</td></tr>")
    return ("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th>"
            "<th>meaning</th></tr>" + "".join(rows) + "</table>")


def _responses(op: dict) -> str:
    items = []
    for code, resp in sorted((op.get("responses") or {}).items()):
        types = ", ".join(escape(t) for t in (resp.get("content") or {}))
        items.append(f"<li><code>{escape(str(code))}</code> {escape(resp.get('description', ''))}"
                     + (f" <span class=d>({types})</span>" if types else "") + "</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else ""


def render(openapi: dict, extra: list[tuple[str, str, str]] = ()) -> str:
    """The page for an OpenAPI document; ``extra``: (kind, path, description) of routes
    OpenAPI cannot describe (WebSockets)."""
    info = openapi.get("info", {})
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
             f"{escape(info.get('title', 'API'))} reference</title><style>{_STYLE}</style>"
             f"</head><body><h1>{escape(info.get('title', 'API'))} "
             f"<small class=d>{escape(info.get('version', ''))}</small></h1>",
             f"<p>{escape(info.get('description', ''))}</p>",
             "<p>Machine-readable schema: <a href=/openapi.json><code>/openapi.json</code></a>."
             " Errors are <code>application/problem+json</code> (RFC 9457).</p>"]
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><span class=m>{escape(method.upper())}</span> {escape(path)}"
                         "</h2>")
            parts.append(f"<p><b>{escape(op.get('summary', ''))}</b></p>")
            if op.get("description"):
                parts.append(f"<p class=d>{escape(op['description'])}</p>")
            parts.append(_parameters(op) + _responses(op))
    for kind, path, text in extra:
        parts.append(f"<h2><span class='m ws'>{escape(kind)}</span> {escape(path)}</h2>"
                     f"<p class=d>{escape(text)}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def docs_response(openapi: dict, extra: list[tuple[str, str, str]] = ()) -> HTMLResponse:
    return HTMLResponse(render(openapi, extra), headers={"Content-Security-Policy": CSP})


__all__ = ["CSP", "docs_response", "render"]
