"""Every error of the read API is an RFC 9457 ``application/problem+json`` document.

``install(app)`` replaces FastAPI's and Starlette's handlers so that no error leaves in
another shape: user errors (``core.errors.UserError``) by their class, request validation
(422), unknown paths (404), wrong methods (405), a store that cannot be used (503, its
masked URL in ``detail``) and, for a bug, a 500 problem without a traceback (the
traceback goes to the server's log). ``detail`` is one line; ``parameter`` names the
parameter at fault when there is one.

Status by class: ``InvalidPageTokenError`` 400, ``InvalidParameterError`` and other
``UserError`` 422, ``NotFoundError`` 404, ``NotAcceptableError`` 406,
``StoreUnavailableError`` 503.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..app.read_params import InvalidParameterError, NotFoundError, parameter_of
from ..core.errors import StoreUnavailableError, UserError, one_line

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("phase1.api")


class InvalidPageTokenError(InvalidParameterError):
    """A page token this server did not issue for this query (forged, tampered, stale)."""


class NotAcceptableError(InvalidParameterError):
    """An ``Accept`` header that admits none of the representations offered."""


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="problem type URI (about:blank: see title)")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="one line: what is wrong and how to fix it")
    instance: str | None = Field(None, description="the request path")
    parameter: str | None = Field(None, description="the parameter at fault, if one is")


def problem(status: int, detail: str, *, parameter: str | None = None,
            instance: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A problem+json response (``detail`` collapsed to one line)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": " ".join(str(detail).split()) or HTTPStatus(status).phrase}
    if instance is not None:
        body["instance"] = instance
    if parameter is not None:
        body["parameter"] = parameter
    return Response(json.dumps(body, ensure_ascii=True).encode("ascii"), status_code=status,
                    media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: UserError) -> int:
    if isinstance(exc, StoreUnavailableError):
        return 503
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InvalidPageTokenError):
        return 400
    if isinstance(exc, NotAcceptableError):
        return 406
    return 422


def user_error_response(exc: UserError, instance: str | None = None) -> Response:
    status = status_of(exc)
    headers = {"Retry-After": "5"} if status == 503 else None
    return problem(status, one_line(exc), parameter=parameter_of(exc), instance=instance,
                   headers=headers)


def validation_detail(errors: list[dict]) -> tuple[str | None, str]:
    """(parameter, one-line detail) of pydantic's errors for a request (the first one)."""
    if not errors:
        return None, "the request is not valid"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path",
                                                                       "header", "body")]
    parameter = loc[0] if loc else None
    message = str(first.get("msg", "is not valid"))
    if first.get("type") == "missing":
        message = "is required"
    value = first.get("input")
    shown = "" if value is None or first.get("type") == "missing" else f" (got {str(value)[:40]!r})"
    return parameter, f"{parameter or 'request'}: {message}{shown}"


def install(app: FastAPI) -> None:
    """Make every error of ``app`` a problem+json response."""

    async def on_user_error(request: Request, exc: UserError) -> Response:
        if isinstance(exc, StoreUnavailableError):
            log.warning("store unavailable: %s", one_line(exc))
        return user_error_response(exc, request.url.path)

    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        parameter, detail = validation_detail(list(exc.errors()))
        return problem(422, detail, parameter=parameter, instance=request.url.path)

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 404:
            detail = f"no such resource {path[:80]!r}: see /docs for the API's paths"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "GET")
            detail = f"method {request.method} is not allowed on {path[:80]}: use {allowed}"
        else:
            detail = str(exc.detail)
        return problem(exc.status_code, detail, instance=path, headers=exc.headers)

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error: it is logged on the server; please report it",
                       instance=request.url.path)

    app.add_exception_handler(UserError, on_user_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)


PROBLEM_RESPONSES: dict[int | str, dict] = {
    code: {"model": Problem, "description": text}
    for code, text in ((400, "malformed request (e.g. a page token not issued for it)"),
                       (404, "not found"), (422, "a parameter is not valid"),
                       (503, "the store cannot be used (its masked URL in detail)"))}


__all__ = ["MEDIA_TYPE", "PROBLEM_RESPONSES", "InvalidPageTokenError", "NotAcceptableError",
           "Problem", "install",
           "problem", "status_of", "user_error_response", "validation_detail"]
