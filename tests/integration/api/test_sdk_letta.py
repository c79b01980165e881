"""letta-client 1.x, unmodified, reads runstate: `Letta` on `/letta` of a real `runstate serve`
over https with a certificate the test made, its typed objects checked field by field."""

import datetime
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from letta_client import AuthenticationError, Letta, NotFoundError
from letta_client.types import Step
from letta_client.types.agents import Run

from tests.support.sdkkit import Served, sample_runs, serve_https
from worker.runtime import Runtime
from worker.store.keys import ref


@pytest.fixture(scope="module")
def served(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_https(redis_server, tmp_path_factory.mktemp("tls"))


def client(served: Served, key: str = "tok_a") -> Letta:
    return Letta(base_url=f"{served.url}/letta", api_key=key, http_client=httpx.Client(verify=served.trust()))


@pytest.fixture
def letta(served: Served, runtime: Runtime) -> Iterator[Letta]:
    sample_runs(served, runtime)
    with client(served) as letta:
        yield letta


def at(runtime: Runtime, run_id: str, field: str) -> datetime.datetime:
    """A stored run time as the SDK parses it."""
    state = runtime.store.get(ref("acct_a", run_id))
    assert state is not None
    return datetime.datetime.fromtimestamp(getattr(state.run, field) / 1000, datetime.UTC)


def test_runs_retrieve_is_lettas_run_for_an_open_and_a_finished_run(letta: Letta, runtime: Runtime) -> None:
    run = letta.runs.retrieve("run_sdk")
    assert isinstance(run, Run)
    assert (run.id, run.agent_id, run.conversation_id, run.status, run.stop_reason) == (
        "run_sdk",
        "asst_1",
        "thread_1",
        "running",
        None,
    )
    assert (run.created_at, run.completed_at, run.total_duration_ns) == (
        at(runtime, "run_sdk", "created_at"),
        None,
        None,
    )
    assert run.metadata == {"team": "billing"}
    assert (run.background, run.callback_url, run.request_config, run.ttft_ns) == (None, None, None, None)
    done = letta.runs.retrieve("run_done")
    assert (done.id, done.agent_id, done.conversation_id, done.status, done.stop_reason) == (
        "run_done",
        "asst_2",
        None,
        "completed",
        "end_turn",
    )
    assert done.completed_at == at(runtime, "run_done", "completed_at")
    assert (
        done.total_duration_ns
        == (done.completed_at - at(runtime, "run_done", "created_at")) // datetime.timedelta(microseconds=1) * 1000
    )


def test_steps_retrieve_finds_a_step_by_id_alone(letta: Letta) -> None:
    step = letta.steps.retrieve("s2")
    assert isinstance(step, Step)
    assert (step.id, step.run_id, step.agent_id, step.status) == ("s2", "run_sdk", "asst_1", "failed")
    assert (step.error_type, step.error_data) == (
        "tool_error",
        {"code": "tool_error", "message": "invoice service answered 503"},
    )
    assert (step.model, step.api_model_handle, step.stop_reason) == ("gpt-4o", "openai/gpt-4o", None)
    assert (step.prompt_tokens, step.completion_tokens, step.total_tokens) == (None, None, None)
    assert (step.tags, step.messages, step.feedback, step.origin) == ([], [], None, None)
    done = letta.steps.retrieve("s1")
    assert (done.status, done.stop_reason, done.error_type, done.error_data) == ("success", "end_turn", None, None)
    assert (done.prompt_tokens, done.completion_tokens, done.total_tokens, done.cached_input_tokens) == (10, 2, 12, 0)
    assert (done.reasoning_tokens, done.prompt_tokens_details, done.completion_tokens_details) == (0, None, None)
    assert letta.steps.retrieve("s5").status == "pending"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (None, ["s5", "s4", "s3", "s2", "s1"]),
        ("desc", ["s5", "s4", "s3", "s2", "s1"]),
        ("asc", ["s1", "s2", "s3", "s4", "s5"]),
    ],
)
def test_runs_steps_list_pages_after_in_both_orders(letta: Letta, order: str | None, expected: list[str]) -> None:
    pager = letta.runs.steps.list("run_sdk", limit=2, **({"order": order} if order else {}))
    pages = [[step.id for step in page.items] for page in pager.iter_pages()]
    assert pages == [expected[0:2], expected[2:4], expected[4:], []]  # the SDK stops at an empty page
    steps = list(letta.runs.steps.list("run_sdk", limit=2, **({"order": order} if order else {})))
    assert all(isinstance(s, Step) and s.run_id == "run_sdk" and s.agent_id == "asst_1" for s in steps)
    assert [s.id for s in steps] == expected


def test_runs_steps_list_pages_backwards_with_before(letta: Letta) -> None:
    pager = letta.runs.steps.list("run_sdk", limit=2, order="asc", before="s5")
    # each page is the two nearest before the previous page's first step
    assert [[s.id for s in page.items] for page in pager.iter_pages()] == [["s3", "s4"], ["s1", "s2"], []]
    first = letta.runs.steps.list("run_sdk", order="asc", limit=1)
    assert [s.id for s in first.items] == ["s1"]


def test_a_wrong_token_is_authentication_error(served: Served, letta: Letta) -> None:
    with client(served, "tok_nope") as wrong:
        for call in (lambda: wrong.runs.retrieve("run_sdk"), lambda: wrong.steps.retrieve("s1")):
            with pytest.raises(AuthenticationError) as raised:
                call()
            assert raised.value.status_code == 401


def test_another_accounts_run_and_step_are_not_found_like_missing_ones(letta: Letta) -> None:
    calls = [
        lambda: letta.runs.retrieve("run_b"),
        lambda: letta.runs.steps.list("run_b"),
        lambda: letta.steps.retrieve("sb1"),
        lambda: letta.steps.retrieve("s_nowhere"),
        lambda: letta.runs.retrieve("run_nowhere"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as raised:
            call()
        assert raised.value.status_code == 404
        assert raised.value.body == {
            "error": {"code": "RESOURCE_NOT_FOUND", "message": raised.value.body["error"]["message"]}
        }  # type: ignore[index]
