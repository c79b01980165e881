"""POST /v1/events: one event or an array of up to 1,000, queued under the token's account.

Over HTTP a run is always the token's account's: the same run id posted through two accounts'
tokens is two runs. An event whose `data.account_id` names another account is refused here, in
the answer, rather than queued (nothing about any other account's runs is consulted for it).

The body is read raw and each event validated on its own (so one bad event does not refuse
the others); its schema still goes into the OpenAPI document, from the event models.
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from pydantic import Field, TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from statemachine.bounds import MAX_JSON_DEPTH
from statemachine.errors import InvalidEvent
from statemachine.events import Event, RunStarted, parse_event
from worker.api.auth import Account, Rt
from worker.api.errors import RESPONSES, ApiError
from worker.api.guard import EVENTS_BODY
from worker.api.schemas import Accepted
from worker.store.durability import NotReplicated
from worker.store.envelope import Envelope
from worker.store.keys import RunRef, ref

MAX_EVENTS = 1_000
# An event's own object and its `data` around data's at most MAX_JSON_DEPTH levels; checked
# before the event is encoded again, which orjson refuses past 254 levels.
MAX_EVENT_DEPTH = MAX_JSON_DEPTH + 2

_REF = "#/components/schemas/Event{model}"
_EVENT_SCHEMA = TypeAdapter(Annotated[Event, Field(discriminator="type")]).json_schema(ref_template=_REF)
# The event models' JSON Schemas, for the OpenAPI document's components (see worker.api.app).
EVENT_COMPONENTS = {f"Event{name}": schema for name, schema in _EVENT_SCHEMA.pop("$defs").items()}
EVENT_COMPONENTS["Event"] = _EVENT_SCHEMA
_EVENT_REF = {"$ref": _REF.format(model="")}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [_EVENT_REF, {"type": "array", "items": _EVENT_REF, "minItems": 1, "maxItems": MAX_EVENTS}]
                }
            }
        },
    }
}

router = APIRouter(responses=RESPONSES)


async def read_body(request: Request, limit: int = EVENTS_BODY) -> bytes:
    """The body, read up to the limit and no further (the guard caps it too, by route): a larger
    one is refused before it is all in memory. A client that goes away mid-upload is answered (to
    no one) with 400, not logged as a crash."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body is {declared} bytes; at most {limit} are allowed")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body is over {limit} bytes; at most {limit} are allowed")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client went away before its body was read") from None
    return b"".join(chunks)


def _events_in(body: bytes) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1,024 levels
            raise ApiError(400, f"body nests too deep; an event may nest at most {MAX_EVENT_DEPTH} levels") from None
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    items = payload if isinstance(payload, list) else [payload]
    if not isinstance(payload, list | dict) or not 1 <= len(items) <= MAX_EVENTS:
        raise ApiError(422, f"body must be one event object or an array of 1 to {MAX_EVENTS} of them")
    return items


@router.post(
    "/v1/events",
    status_code=202,
    response_model=None,
    responses={202: {"model": Accepted}, 413: RESPONSES[400] | {"description": "INVALID_INPUT: body over 1 MiB"}},
    openapi_extra=_BODY,
)
async def post_events(request: Request, owner: Account, runtime: Rt) -> dict[str, Any]:
    """One event or an array of up to 1,000: the valid ones are queued under the token's account."""
    valid: list[tuple[RunRef, Envelope]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(_events_in(await read_body(request))):
        if (depth := _depth(item)) > MAX_EVENT_DEPTH:
            too_deep = f"event nests {depth} levels deep; at most {MAX_EVENT_DEPTH} are allowed"
            rejected.append({"index": index, "error": too_deep})
            continue
        text = orjson.dumps(item).decode()
        try:
            event = parse_event(text)
        except InvalidEvent as refusal:
            rejected.append({"index": index, "error": refusal.detail})
            continue
        named = event.data.account_id if isinstance(event, RunStarted) else None
        if named not in (None, owner):
            error = f"data.account_id: {named!r} is not the token's account (an event posted here is the token's)"
            rejected.append({"index": index, "error": error})
            continue
        valid.append((ref(owner, event.run_id), Envelope(text, owner)))
    if not valid:
        raise ApiError(400, "no event in the body is valid", extra={"rejected": rejected})
    size = runtime.settings.batch_size
    for start in range(0, len(valid), size):
        await run_in_threadpool(runtime.publisher.enqueue, valid[start : start + size])  # Redis: off the loop
    try:
        await run_in_threadpool(runtime.publisher.confirm)  # RUNSTATE_REPLICA_ACKS replicas have them
    except NotReplicated as behind:  # the client posts the same events again: their ids dedupe
        raise ApiError(503, str(behind), code="SERVICE_UNAVAILABLE", headers={"Retry-After": "1"}) from None
    return {"accepted": len(valid), "rejected": rejected}


def _depth(value: Any) -> int:
    """Levels of objects and arrays, iteratively: a hostile body cannot exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
