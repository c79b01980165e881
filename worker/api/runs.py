"""Runs over HTTP: read a run, its steps and history in every dialect, list an account's runs,
cancel a run, delete one. A run is (account, run id) and the account is always the token's: a
run id another account uses is, to this one, an id nobody holds (every answer the same)."""

import secrets
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Response

from statemachine.dialects import Format, render_run, render_step, render_transition
from statemachine.models import RunState, Step
from statemachine.status import RUN_TERMINAL, Origin, RunStatus
from statemachine.timefmt import rfc3339
from worker.api.auth import Account, Rt
from worker.api.errors import NOT_FOUND, RESPONSES, ApiError, documented
from worker.api.paging import Cursor, Limit, Order, Page, envelope, page_of, unknown_cursor
from worker.api.schemas import CancelQueued, History, RefactorRun, RunList, StepList
from worker.runtime import Runtime
from worker.store.deletion import DeleteContended, Deleter, was_deleted
from worker.store.envelope import Envelope
from worker.store.keys import ref

log = structlog.get_logger("runstate.api")
router = APIRouter(
    responses=RESPONSES | NOT_FOUND | {410: documented("RESOURCE_DELETED: the run was deleted (DELETE /v1/runs/{id})")}
)
_CANCELLED: dict[int | str, dict[str, Any]] = {
    202: {"model": CancelQueued},
    409: documented("CONFLICT: the run has already finished"),
}
_DELETED: dict[int | str, dict[str, Any]] = {409: documented("CONFLICT: workers kept changing the run; try again")}


def owned_run(runtime: Runtime, run_id: str, owner: str, *, whole: bool = True) -> RunState:
    """The token's account's run of this id; 410 when the account deleted it; else 404 (another
    account's run of this id, live or deleted, is to this one an id nobody holds). Not `whole`:
    the run and its open steps only, for what reads a step or two (`step_page`, `step_of`)."""
    run = ref(owner, run_id)
    state = runtime.store.get(run) if whole else runtime.store.document(run)
    if state is None and was_deleted(runtime.redis, run):
        raise ApiError(410, f"run {run_id!r} was deleted", code="RESOURCE_DELETED")
    if state is None:
        raise ApiError(404, f"run {run_id!r} not found")
    return state


def step_page(
    runtime: Runtime, state: RunState, fmt: Format, *, limit: int, order: Order, after: str | None, before: str | None
) -> tuple[list[dict[str, Any]], Page]:
    """A page of the run's steps, rendered: the step ids in creation order are read, then only the
    steps on the page, so a page costs the same on a run of 5,000 steps as on one of 5. The ids and
    the document they are read with are of one moment (`Store.step_listing`), so a step created
    meanwhile is on no page yet; the page names only the steps it shows (a run deleted meanwhile
    shows fewer), so a client that follows `last_id` misses none."""
    run = ref(state.run.account_id, state.run.id)
    document, step_ids = runtime.store.step_listing(run)
    listed = state if document is None else document
    page = page_of(step_ids, limit=limit, order=order, after=after, before=before, what="run's steps")
    steps = runtime.store.steps(run, listed, page.ids)
    shown = [i for i in page.ids if i in steps]
    return [render_step(steps[i], listed.run, fmt) for i in shown], Page(shown, page.has_more)


def step_of(runtime: Runtime, state: RunState, step_id: str) -> Step | None:
    """One step of the run (`state` may hold only its open steps)."""
    return runtime.store.steps(ref(state.run.account_id, state.run.id), state, [step_id]).get(step_id)


def _step_format(fmt: Format) -> Format:
    if fmt is Format.REFACTOR:
        raise ApiError(422, "format must be azure, letta or native for steps")
    return fmt


@router.get("/v1/run/{run_id}", response_model=None, responses={200: {"model": RefactorRun}})
@router.get("/v1/runs/{run_id}", response_model=None, responses={200: {"model": RefactorRun}})
def get_run(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """The run as re-factor's GET /v1/run/{id} returns it."""
    return render_run(owned_run(runtime, run_id, owner), Format.REFACTOR)


@router.get("/v1/runs/{run_id}/steps", response_model=None, responses={200: {"model": StepList}})
def list_steps(
    run_id: str,
    owner: Account,
    runtime: Rt,
    format: Annotated[Format, Query()] = Format.AZURE,
    limit: Limit = 20,
    order: Order = Order.ASC,
    after: Cursor = None,
    before: Cursor = None,
) -> dict[str, Any]:
    """The run's steps in creation order (`order=desc`: newest first), `limit` at a time after the
    step `after` and before the step `before`; a cursor that is none of the run's steps is a 400."""
    state = owned_run(runtime, run_id, owner, whole=False)
    rendered, page = step_page(
        runtime, state, _step_format(format), limit=limit, order=order, after=after, before=before
    )
    return envelope(rendered, page)


@router.get("/v1/runs/{run_id}/steps/{step_id}", response_model=None, responses={200: {"model": dict[str, Any]}})
def get_step(
    run_id: str, step_id: str, owner: Account, runtime: Rt, format: Annotated[Format, Query()] = Format.AZURE
) -> dict[str, Any]:
    """One step, in the asked format (azure by default)."""
    fmt = _step_format(format)
    state = owned_run(runtime, run_id, owner, whole=False)
    step = step_of(runtime, state, step_id)
    if step is None:
        raise ApiError(404, f"step {step_id!r} of run {run_id!r} not found")
    return render_step(step, state.run, fmt)


@router.get("/v1/runs/{run_id}/history", response_model=None, responses={200: {"model": History}})
def history(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """The run's transitions, in order."""
    owned_run(runtime, run_id, owner, whole=False)
    return {"object": "list", "data": [render_transition(t) for t in runtime.store.history(ref(owner, run_id))]}


@router.get("/v1/runs", response_model=None, responses={200: {"model": RunList}})
def list_runs(
    owner: Account,
    runtime: Rt,
    status: RunStatus | None = None,
    limit: Limit = 20,
    order: Order = Order.ASC,
    after: Cursor = None,
    before: Cursor = None,
    thread_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> dict[str, Any]:
    """The token's account's runs, oldest first (`order=desc`: newest first); `after` and `before`
    run ids, as for steps. A cursor that is not one of this account's runs is a 400. `thread_id`:
    only the runs on that thread (how a resumed conversation finds its run)."""
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None and runtime.store.document(ref(owner, cursor)) is None:  # another's: as if missing
            raise unknown_cursor(name, cursor, "account's runs")
    backwards = before is not None and after is None  # the runs nearest before `before`, walked towards it
    newest_first = (order is Order.DESC) != backwards
    start = before if backwards else after

    def wanted(state: RunState) -> bool:
        return status in (None, state.run.status) and thread_id in (None, state.run.thread_id)

    found: list[RunState] = []
    for state in runtime.store.runs(
        after=None if start is None else ref(owner, start), account=owner, newest_first=newest_first, whole=False
    ):
        if state.run.id == before:
            break
        if wanted(state):
            found.append(state)
            if len(found) > limit:
                break
    chosen = found[:limit][::-1] if backwards else found[:limit]
    # only the runs on the page are read whole (their totals sum every step), a moment after their
    # documents were: one that left the filter meanwhile, or was deleted, is left off the page
    wholes = runtime.store.get_many([ref(owner, state.run.id) for state in chosen])
    shown = [state for state in wholes.values() if wanted(state)]
    page = Page([state.run.id for state in shown], len(found) > limit)
    return envelope([render_run(state, Format.REFACTOR) for state in shown], page)


@router.post("/v1/run/{run_id}/cancel", status_code=202, response_model=None, responses=_CANCELLED)
@router.post("/v1/runs/{run_id}/cancel", status_code=202, response_model=None, responses=_CANCELLED)
def cancel_run(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """Queue a `run.cancelled` event (origin `api`), stamped now; 409 when the run has already finished.

    A worker applies it in the run's order: whatever finished the run first still wins.
    """
    state = owned_run(runtime, run_id, owner, whole=False)
    if state.run.status in RUN_TERMINAL:
        raise ApiError(409, f"run {run_id!r} is already {state.run.status.value}; only an open run can be cancelled")
    event_id = f"api_cancel_{secrets.token_hex(12)}"
    event = {"id": event_id, "type": "run.cancelled", "run_id": run_id, "occurred_at": rfc3339(runtime.store.now_ms())}
    runtime.publisher.enqueue([(ref(owner, run_id), Envelope(orjson.dumps(event).decode(), owner, Origin.API))])
    log.info("run.cancel_queued", run_id=run_id, event_id=event_id, account=owner)
    return {"run_id": run_id, "event_id": event_id, "status": "queued"}


@router.delete("/v1/run/{run_id}", status_code=204, response_class=Response, responses=_DELETED)
@router.delete("/v1/runs/{run_id}", status_code=204, response_class=Response, responses=_DELETED)
def delete_run(run_id: str, owner: Account, runtime: Rt) -> None:
    """Delete the run, its steps, history and queued events; its tombstone keeps late events stale."""
    try:
        deleted = Deleter(runtime.redis, runtime.settings.retention).delete(ref(owner, run_id))
    except DeleteContended as contended:
        raise ApiError(409, str(contended)) from None
    if not deleted:
        owned_run(runtime, run_id, owner, whole=False)  # 410 when it was deleted already, else 404
        raise ApiError(404, f"run {run_id!r} not found")
