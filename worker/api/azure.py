"""Azure AI Agents' run-step reads, under `/azure`, so that `azure-ai-agents`' `AgentsClient`
reads runstate unmodified: `AgentsClient(endpoint="https://host:port/azure", credential=...)`,
then `run_steps.get` and `run_steps.list`. The SDK sends Bearer tokens over https only.

Steps render as `thread.run.step` (docs/design.md, "Output dialects"); lists in Azure's envelope,
newest first by default, paged on `last_id`. The path's thread must be the run's thread, else
404 as for a missing run (a run that never named a thread has no Azure address). `api-version`
and `include[]` are accepted and change nothing: runstate has one version, and no step
details to include beyond those it always returns. Errors are `{"error": {"code", "message"}}`,
which azure-core reads into its typed exceptions (404 `ResourceNotFoundError`, 401
`ClientAuthenticationError`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from statemachine.dialects import Format, render_step
from statemachine.models import RunState
from worker.api.auth import Account, Rt
from worker.api.errors import NOT_FOUND, RESPONSES, ApiError
from worker.api.paging import Cursor, Limit, Order, envelope
from worker.api.runs import owned_run, step_of, step_page
from worker.api.schemas import StepList
from worker.runtime import Runtime

router = APIRouter(prefix="/azure", tags=["azure"], responses=RESPONSES | NOT_FOUND)

ApiVersion = Annotated[str | None, Query(alias="api-version", max_length=64)]
Include = Annotated[list[Annotated[str, Query(max_length=128)]] | None, Query(alias="include[]", max_length=16)]


def _thread_run(runtime: Runtime, thread_id: str, run_id: str, owner: str) -> RunState:
    """The run and its open steps; 404 unless it is on this thread."""
    state = owned_run(runtime, run_id, owner, whole=False)
    if state.run.thread_id != thread_id:
        raise ApiError(404, f"run {run_id!r} not found in thread {thread_id!r}")
    return state


@router.get("/threads/{thread_id}/runs/{run_id}/steps", response_model=None, responses={200: {"model": StepList}})
def list_run_steps(
    thread_id: str,
    run_id: str,
    owner: Account,
    runtime: Rt,
    api_version: ApiVersion = None,
    include: Include = None,
    limit: Limit = 20,
    order: Order = Order.DESC,
    after: Cursor = None,
    before: Cursor = None,
) -> dict[str, Any]:
    """The run's steps as `thread.run.step`s, newest first unless `order=asc`."""
    state = _thread_run(runtime, thread_id, run_id, owner)
    rendered, page = step_page(runtime, state, Format.AZURE, limit=limit, order=order, after=after, before=before)
    return envelope(rendered, page)


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", response_model=None)
def get_run_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    owner: Account,
    runtime: Rt,
    api_version: ApiVersion = None,
    include: Include = None,
) -> dict[str, Any]:
    """One step as a `thread.run.step`."""
    state = _thread_run(runtime, thread_id, run_id, owner)
    step = step_of(runtime, state, step_id)
    if step is None:
        raise ApiError(404, f"step {step_id!r} of run {run_id!r} not found")
    return render_step(step, state.run, Format.AZURE)
