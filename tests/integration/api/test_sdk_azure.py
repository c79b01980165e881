"""azure-ai-agents, unmodified, reads runstate over https: `AgentsClient` on `/azure` of a real
`runstate serve` with a certificate the test made, its typed objects checked field by field."""

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from azure.ai.agents import AgentsClient
from azure.ai.agents.models import (
    RunStep,
    RunStepError,
    RunStepMessageCreationDetails,
    RunStepStatus,
    RunStepType,
)
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from tests.support.sdkkit import Served, sample_runs, serve_https
from worker.runtime import Runtime
from worker.store.keys import ref


class Token:
    """A `TokenCredential` handing out one runstate API token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


@pytest.fixture(scope="module")
def served(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_https(redis_server, tmp_path_factory.mktemp("tls"))


def client(served: Served, key: str = "tok_a") -> AgentsClient:
    return AgentsClient(endpoint=f"{served.url}/azure", credential=Token(key), connection_verify=str(served.ca))


@pytest.fixture
def agents(served: Served, runtime: Runtime) -> Iterator[AgentsClient]:
    sample_runs(served, runtime)
    with client(served) as agents:  # closed, so the server's graceful stop waits for no idle connection
        yield agents


def seconds(runtime: Runtime, step_id: str, field: str) -> datetime.datetime:
    """A stored step's time as the SDK parses it: whole Unix seconds, UTC."""
    state = runtime.store.get(ref("acct_a", "run_sdk"))
    assert state is not None
    ms = getattr(state.steps[step_id], field)
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)


def test_get_returns_a_completed_step_as_the_sdks_run_step(agents: AgentsClient, runtime: Runtime) -> None:
    step = agents.run_steps.get("thread_1", "run_sdk", "s1")
    assert isinstance(step, RunStep)
    assert (step.id, step.object, step.run_id, step.thread_id, step.agent_id) == (
        "s1",
        "thread.run.step",
        "run_sdk",
        "thread_1",
        "asst_1",
    )
    assert (step.type, step.status) == (RunStepType.MESSAGE_CREATION, RunStepStatus.COMPLETED)
    assert step.created_at == seconds(runtime, "s1", "created_at")
    assert step.completed_at == seconds(runtime, "s1", "completed_at")
    assert (step.cancelled_at, step.expired_at, step.failed_at, step.last_error) == (None, None, None, None)
    assert isinstance(step.step_details, RunStepMessageCreationDetails)
    assert step.step_details.message_creation.message_id is None
    assert step.usage is not None
    assert (step.usage.prompt_tokens, step.usage.completion_tokens, step.usage.total_tokens) == (10, 2, 12)
    assert step.metadata == {}


def test_a_failed_steps_last_error_is_the_sdks_run_step_error(agents: AgentsClient, runtime: Runtime) -> None:
    step = agents.run_steps.get(thread_id="thread_1", run_id="run_sdk", step_id="s2")
    assert step.status == RunStepStatus.FAILED
    assert step.failed_at == seconds(runtime, "s2", "failed_at")
    assert step.completed_at is None
    assert isinstance(step.last_error, RunStepError)
    assert (step.last_error.code, step.last_error.message) == (
        "server_error",
        "tool_error: invoice service answered 503",
    )


def test_an_open_step_has_no_usage_or_end(agents: AgentsClient) -> None:
    step = agents.run_steps.get("thread_1", "run_sdk", "s5")
    assert (step.status, step.usage, step.completed_at, step.last_error) == (
        RunStepStatus.IN_PROGRESS,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("order", "pages"),
    [
        (None, [["s5", "s4"], ["s3", "s2"], ["s1"], []]),  # Azure's default: newest first
        ("desc", [["s5", "s4"], ["s3", "s2"], ["s1"], []]),
        ("asc", [["s1", "s2"], ["s3", "s4"], ["s5"], []]),
    ],
)
def test_list_pages_on_last_id_in_both_orders(agents: AgentsClient, order: str | None, pages: list[list[str]]) -> None:
    listed = agents.run_steps.list("thread_1", "run_sdk", limit=2, **({"order": order} if order else {}))
    got = [[step.id for step in page] for page in listed.by_page()]
    assert got == pages  # the SDK stops at a page whose last_id is null: the empty one
    everything = list(agents.run_steps.list("thread_1", "run_sdk", limit=2, **({"order": order} if order else {})))
    assert [s.id for s in everything] == [i for page in pages for i in page]
    assert all(isinstance(s, RunStep) and s.run_id == "run_sdk" for s in everything)


def test_list_before_a_step_and_with_include(agents: AgentsClient) -> None:
    listed = agents.run_steps.list(
        "thread_1",
        "run_sdk",
        limit=2,
        order="asc",
        before="s5",
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    )
    # the page nearest before s5; the SDK then asks after=s4&before=s5, which is empty
    assert [[s.id for s in page] for page in listed.by_page()] == [["s3", "s4"], []]


def test_a_wrong_token_is_client_authentication_error(served: Served, agents: AgentsClient) -> None:
    with client(served, "tok_nope") as wrong:
        with pytest.raises(ClientAuthenticationError) as raised:
            wrong.run_steps.get("thread_1", "run_sdk", "s1")
        with pytest.raises(ClientAuthenticationError):
            list(wrong.run_steps.list("thread_1", "run_sdk"))
    assert raised.value.status_code == 401
    assert raised.value.error is not None
    assert raised.value.error.code == "AUTHORIZATION_ERROR"


def test_another_accounts_run_is_resource_not_found_like_a_missing_one(agents: AgentsClient) -> None:
    for thread, run, step in (
        ("thread_1", "run_b", "sb1"),
        ("thread_1", "run_nowhere", "s1"),
        ("thread_2", "run_sdk", "s1"),
        ("thread_1", "run_sdk", "s9"),
    ):
        with pytest.raises(ResourceNotFoundError) as raised:
            agents.run_steps.get(thread, run, step)
        assert raised.value.status_code == 404
        assert raised.value.error is not None
        assert raised.value.error.code == "RESOURCE_NOT_FOUND"
    with pytest.raises(ResourceNotFoundError):
        list(agents.run_steps.list("thread_1", "run_b"))
