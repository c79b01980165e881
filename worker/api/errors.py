"""The HTTP API's errors: always `{"error": {"code", "message"}}` with re-factor's codes plus
CONFLICT, for every route, unknown routes and methods included, and never a stack trace."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

CODES = {
    400: "INVALID_INPUT",
    401: "AUTHORIZATION_ERROR",
    404: "RESOURCE_NOT_FOUND",
    405: "INVALID_INPUT",
    408: "INVALID_INPUT",
    409: "CONFLICT",
    410: "RESOURCE_DELETED",
    413: "INVALID_INPUT",
    422: "INVALID_INPUT",
    429: "RATE_LIMIT_EXCEEDED",
    431: "INVALID_INPUT",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ApiError(HTTPException):
    """Raised by a route or a dependency to answer `status` with one of the codes above."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code or CODES.get(status, "INTERNAL_ERROR")
        self.extra = extra or {}


class Rejection(BaseModel):
    index: int  # the event's position in the body
    error: str  # every field and rule it broke


class ErrorDetail(BaseModel):
    code: str
    message: str
    rejected: list[Rejection] | None = None  # POST /v1/events when no event is valid: why each was refused


class ErrorBody(BaseModel):
    error: ErrorDetail


def documented(description: str, **extra: Any) -> dict[str, Any]:
    """An error answer for the OpenAPI document: its description, and the one error shape."""
    return {"model": ErrorBody, "description": description, **extra}


# The error answers every authenticated route may give, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: documented("INVALID_INPUT: the request broke a rule; the message names it"),
    401: documented("AUTHORIZATION_ERROR: no Bearer token, or an unknown one"),
    422: documented("INVALID_INPUT: a parameter or body of the wrong shape"),
    429: documented(
        "RATE_LIMIT_EXCEEDED: more than RUNSTATE_API_RATE_LIMIT requests in a second with this token",
        headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    ),
    431: documented("INVALID_INPUT: the request head (request line and headers) is over 16 KiB"),
    500: documented("INTERNAL_ERROR: never with a stack trace"),
    503: documented(
        "SERVICE_UNAVAILABLE: Redis is unreachable, loading, out of memory or read-only; the message says which",
        headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: documented("RESOURCE_NOT_FOUND: missing, or another account's")}


def error_response(
    status: int, code: str, message: str, extra: dict[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **(extra or {})}}, status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, str(exc.detail), exc.extra, exc.headers)
    assert isinstance(exc, StarletteHTTPException)  # unknown routes (404) and methods (405, with Allow) too
    code = CODES.get(exc.status_code, "INVALID_INPUT" if exc.status_code < 500 else "INTERNAL_ERROR")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    malformed = any(e["type"] == "json_invalid" for e in errors)  # not JSON at all: 400, like /v1/events
    return error_response(400 if malformed else 422, "INVALID_INPUT", problems)


async def _crashed(request: Request, exc: Exception) -> JSONResponse:
    return error_response(500, "INTERNAL_ERROR", "an unexpected error occurred")  # never a stack trace in a body


def install(app: FastAPI) -> None:
    """Answer every error in the one shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _crashed)
