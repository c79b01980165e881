"""The HTTP API (FastAPI): ingest events and read runs and steps, per account (Bearer tokens).

Errors are always `{"error": {"code", "message"}}` with re-factor's codes; another
account's run answers 404, exactly like a missing one.
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from statemachine.dialects import Format, render_run, render_step, render_transition
from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from statemachine.models import RunState
from worker.envelope import Envelope
from worker.runtime import Runtime

MAX_BODY = 1_048_576
MAX_EVENTS = 1_000
CODES = {
    400: "INVALID_INPUT",
    401: "AUTHORIZATION_ERROR",
    404: "RESOURCE_NOT_FOUND",
    409: "CONFLICT",
    413: "INVALID_INPUT",
    422: "INVALID_INPUT",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
}


class ApiError(HTTPException):
    """Raised by a route to answer with one of re-factor's error codes."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(status_code=status, detail=message)
        self.code = code or CODES.get(status, "INTERNAL_ERROR")
        self.extra = extra or {}


def _error(status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **(extra or {})}}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return _error(exc.status_code, exc.code, str(exc.detail), exc.extra)
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, CODES.get(exc.status_code, "INVALID_INPUT"), str(exc.detail))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return _error(422, "INVALID_INPUT", problems)


async def _crashed(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, "INTERNAL_ERROR", "an unexpected error occurred")  # never a stack trace in a body


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="runstate", version="0.1.0", description=__doc__)
    app.state.runtime = runtime
    app.state.tokens = runtime.settings.api_token_accounts()
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _crashed)
    app.include_router(router)
    return app


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _account(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    tokens: dict[str, str] = request.app.state.tokens
    if scheme.lower() != "bearer" or token not in tokens:
        raise ApiError(401, "a valid Bearer token is required")
    return tokens[token]


Account = Annotated[str, Depends(_account)]
Rt = Annotated[Runtime, Depends(_runtime)]
router = APIRouter()


def _owned_run(runtime: Runtime, run_id: str, owner: str) -> RunState:
    state = runtime.store.get(run_id)
    if state is None or state.run.account_id != owner:
        raise ApiError(404, f"run {run_id!r} not found")
    return state


def _step_format(fmt: Format) -> Format:
    if fmt is Format.REFACTOR:
        raise ApiError(422, "format must be azure, letta or native for steps")
    return fmt


@router.get("/healthz")
def healthz(runtime: Rt) -> dict[str, str]:
    try:
        runtime.redis.ping()
    except Exception:
        raise ApiError(503, "Redis is not reachable", code="INTERNAL_ERROR") from None
    return {"status": "ok"}


def _events_in(body: bytes) -> list[Any]:
    if len(body) > MAX_BODY:
        raise ApiError(413, f"body is {len(body)} bytes; at most {MAX_BODY} are allowed")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    items = payload if isinstance(payload, list) else [payload]
    if not isinstance(payload, list | dict) or not 1 <= len(items) <= MAX_EVENTS:
        raise ApiError(422, f"body must be one event object or an array of 1 to {MAX_EVENTS} of them")
    return items


@router.post("/v1/events", status_code=202)
async def post_events(request: Request, owner: Account, runtime: Rt) -> dict[str, Any]:
    """One event or an array of up to 1,000: the valid ones are queued under the token's account."""
    valid: list[tuple[str, Envelope]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(_events_in(await request.body())):
        text = orjson.dumps(item).decode()
        try:
            event = parse_event(text)
        except InvalidEvent as refusal:
            rejected.append({"index": index, "error": refusal.detail})
            continue
        valid.append((event.run_id, Envelope(text, owner)))
    if not valid:
        raise ApiError(400, "no event in the body is valid", extra={"rejected": rejected})
    size = runtime.settings.batch_size
    for start in range(0, len(valid), size):
        runtime.publisher.enqueue(valid[start : start + size])
    return {"accepted": len(valid), "rejected": rejected}


@router.get("/v1/run/{run_id}")
@router.get("/v1/runs/{run_id}")
def get_run(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """The run as re-factor's GET /v1/run/{id} returns it."""
    return render_run(_owned_run(runtime, run_id, owner), Format.REFACTOR)


@router.get("/v1/runs/{run_id}/steps")
def list_steps(
    run_id: str,
    owner: Account,
    runtime: Rt,
    format: Annotated[Format, Query()] = Format.AZURE,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> dict[str, Any]:
    fmt = _step_format(format)
    state = _owned_run(runtime, run_id, owner)
    ids = list(state.steps)
    start = ids.index(after) + 1 if after in state.steps else 0
    page = ids[start : start + limit]
    return {
        "object": "list",
        "data": [render_step(state.steps[i], state.run, fmt) for i in page],
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
        "has_more": start + limit < len(ids),
    }


@router.get("/v1/runs/{run_id}/steps/{step_id}")
def get_step(
    run_id: str, step_id: str, owner: Account, runtime: Rt, format: Annotated[Format, Query()] = Format.AZURE
) -> dict[str, Any]:
    fmt = _step_format(format)
    state = _owned_run(runtime, run_id, owner)
    if step_id not in state.steps:
        raise ApiError(404, f"step {step_id!r} of run {run_id!r} not found")
    return render_step(state.steps[step_id], state.run, fmt)


@router.get("/v1/runs/{run_id}/history")
def history(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    _owned_run(runtime, run_id, owner)
    return {"object": "list", "data": [render_transition(t) for t in runtime.store.history(run_id)]}


@router.get("/v1/runs")
def list_runs(
    owner: Account, runtime: Rt, status: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    found = []
    for state in runtime.store.runs():
        if state.run.account_id == owner and (status is None or state.run.status == status):
            found.append(render_run(state, Format.REFACTOR))
            if len(found) > limit:
                break
    return {"object": "list", "data": found[:limit], "has_more": len(found) > limit}
