"""Letta's run and step reads, under `/letta`, so that `letta-client` 1.x reads runstate
unmodified: `Letta(base_url="https://host:port/letta", api_key=token)`, then
`runs.retrieve`, `runs.steps.list` and `steps.retrieve`.

Steps render as Letta's `Step` and runs as its `Run` (statemachine/letta_run.py says how
runstate's statuses map). A step list is a bare JSON array, newest first unless `order=asc`;
the SDK pages it on the last item's id (`after`), or the first one's when it walks `before`.
`GET /v1/steps/{id}` finds the step's run through the step index (keys.step_index) within the
token's account: another account's step answers 404, like a missing one.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from statemachine.dialects import Format, render_step
from statemachine.letta_run import letta_run
from worker.api.auth import Account, Rt
from worker.api.errors import NOT_FOUND, RESPONSES, ApiError
from worker.api.paging import Cursor, Order
from worker.api.runs import owned_run, step_of, step_page

router = APIRouter(prefix="/letta", tags=["letta"], responses=RESPONSES | NOT_FOUND)

LettaLimit = Annotated[int, Query(ge=1, le=100)]


@router.get("/v1/runs/{run_id}", response_model=None)
def retrieve_run(run_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """The run as Letta's `Run`."""
    return letta_run(owned_run(runtime, run_id, owner, whole=False).run)


@router.get("/v1/runs/{run_id}/steps", response_model=None)
def list_run_steps(
    run_id: str,
    owner: Account,
    runtime: Rt,
    limit: LettaLimit = 100,
    order: Order = Order.DESC,
    order_by: Literal["created_at"] = "created_at",
    after: Cursor = None,
    before: Cursor = None,
) -> list[dict[str, Any]]:
    """The run's steps as Letta `Step`s, a bare array, newest first unless `order=asc`."""
    state = owned_run(runtime, run_id, owner, whole=False)
    rendered, _ = step_page(runtime, state, Format.LETTA, limit=limit, order=order, after=after, before=before)
    return rendered


@router.get("/v1/steps/{step_id}", response_model=None)
def retrieve_step(step_id: str, owner: Account, runtime: Rt) -> dict[str, Any]:
    """One step of the token's account, found by its id alone."""
    run = runtime.store.run_of_step(owner, step_id)  # the index is the account's: another's step is missing here
    state = runtime.store.document(run) if run is not None else None
    step = step_of(runtime, state, step_id) if state is not None and state.run.account_id == owner else None
    if state is None or step is None:
        raise ApiError(404, f"step {step_id!r} not found")
    return render_step(step, state.run, Format.LETTA)
