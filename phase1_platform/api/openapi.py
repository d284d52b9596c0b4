"""The API's OpenAPI document: FastAPI's, with every error response declared as
``application/problem+json`` (what the API sends) and the bars JSON body's schema (the
body is written by ``api.render``, not by a response model)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .models import Bar, Bars
from .problems import MEDIA_TYPE


def _problem_content(responses: dict) -> None:
    for code, response in responses.items():
        content = response.get("content")
        if not str(code).startswith(("4", "5")) or not content:
            continue
        schema = (content.pop("application/json", None) or {}).get("schema")
        if schema:
            content[MEDIA_TYPE] = {"schema": schema}


def build_openapi(app: FastAPI) -> dict:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (Bar, Bars):
        schema = model.model_json_schema(by_alias=True,
                                         ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        components[model.__name__] = schema
    for path, methods in doc.get("paths", {}).items():
        for op in methods.values():
            _problem_content(op.get("responses", {}))
            ok = op.get("responses", {}).get("200", {}).get("content", {})
            if path == "/v1/bars" and "application/json" in ok:
                ok["application/json"] = {"schema": {"$ref": "#/components/schemas/Bars"}}
    return doc


def install(app: FastAPI) -> None:
    """Serve ``build_openapi(app)`` (built once) at the app's OpenAPI URL."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["build_openapi", "install"]
