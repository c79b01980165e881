"""runstate's own lists take `order` and `before`, an unknown cursor is a 400 on every list, an
account's runs are paged from its own runs index (never another account's), and the step index
behind Letta's GET /v1/steps/{id} lives and dies with its run."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from statemachine.models import RunState
from tests.support.apikit import A, B, api_client, post_events
from tests.support.publishing import refs
from worker.runtime import Runtime
from worker.store import keys
from worker.store.runs import Store


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _steps(api: TestClient, runtime: Runtime, run_id: str = "r1", count: int = 5) -> None:
    started = {"id": f"{run_id}_s", "type": "run.started", "run_id": run_id, "data": {"thread_id": "t1"}}
    created = [
        {"id": f"{run_id}_c{n}", "type": "step.created", "run_id": run_id, "step_id": f"{run_id}_s{n}"}
        for n in range(1, count + 1)
    ]
    post_events(api, started, *created)
    runtime.processor.drain(refs(run_id, account="acct_a"))


def ids(answer: dict[str, object]) -> list[str]:
    return [item["id"] for item in answer["data"]]  # type: ignore[attr-defined,index]


@pytest.mark.parametrize(
    ("params", "expected", "has_more"),
    [
        ({"limit": 2}, ["r1_s1", "r1_s2"], True),
        ({"limit": 2, "order": "desc"}, ["r1_s5", "r1_s4"], True),
        ({"limit": 2, "after": "r1_s4"}, ["r1_s5"], False),
        ({"limit": 2, "before": "r1_s4"}, ["r1_s2", "r1_s3"], True),
        ({"limit": 2, "before": "r1_s2"}, ["r1_s1"], False),
        ({"limit": 2, "order": "desc", "before": "r1_s2"}, ["r1_s4", "r1_s3"], True),
        ({"after": "r1_s1", "before": "r1_s4"}, ["r1_s2", "r1_s3"], False),
    ],
)
def test_step_lists_page_in_both_orders_after_and_before(
    api: TestClient, runtime: Runtime, params: dict[str, object], expected: list[str], has_more: bool
) -> None:
    _steps(api, runtime)
    answer = api.get("/v1/runs/r1/steps", params=params, headers=A).json()
    assert (ids(answer), answer["first_id"], answer["last_id"], answer["has_more"]) == (
        expected,
        expected[0],
        expected[-1],
        has_more,
    )


def test_runs_list_pages_newest_first_and_before(api: TestClient, runtime: Runtime) -> None:
    for run_id in ("r1", "r2", "r3"):
        _steps(api, runtime, run_id, count=1)
    newest = api.get("/v1/runs", params={"order": "desc", "limit": 2}, headers=A).json()
    assert (ids(newest), newest["has_more"]) == (["r3", "r2"], True)
    before = api.get("/v1/runs", params={"before": "r3", "limit": 1}, headers=A).json()
    assert (ids(before), before["has_more"]) == (["r2"], True)
    older = api.get("/v1/runs", params={"order": "desc", "after": "r2"}, headers=A).json()
    assert (ids(older), older["has_more"]) == (["r1"], False)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/runs/r1/steps?after=nope",
        "/v1/runs/r1/steps?before=nope",
        "/v1/runs?after=nope",
        "/v1/runs?before=nope",
        "/azure/threads/t1/runs/r1/steps?after=nope",
        "/azure/threads/t1/runs/r1/steps?before=nope",
        "/letta/v1/runs/r1/steps?after=nope",
        "/letta/v1/runs/r1/steps?before=nope",
    ],
)
def test_an_unknown_cursor_is_400_on_every_list(api: TestClient, runtime: Runtime, path: str) -> None:
    _steps(api, runtime)
    answer = api.get(path, headers=A)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "INVALID_INPUT"
    assert "'nope' is not one of the" in answer.json()["error"]["message"]


def test_the_step_index_expires_with_the_finished_run_and_goes_with_a_deleted_one(
    api: TestClient, runtime: Runtime
) -> None:
    _steps(api, runtime, "r1", count=2)
    index = keys.step_index("acct_a", "r1_s1")
    assert (runtime.redis.get(index), runtime.redis.pttl(index)) == (b"acct_a/r1", -1)  # the run's ref; open: no TTL
    assert api.get("/letta/v1/steps/r1_s1", headers=B).status_code == 404  # another account's step
    post_events(api, {"id": "done", "type": "run.completed", "run_id": "r1"})
    runtime.processor.drain(refs("r1", account="acct_a"))
    run_ttl = runtime.redis.pttl(keys.run(keys.ref("acct_a", "r1")))
    assert 0 < run_ttl - 1_000 <= runtime.redis.pttl(index) <= run_ttl  # expires with the run
    assert api.get("/letta/v1/steps/r1_s2", headers=A).json()["run_id"] == "r1"
    assert api.delete("/v1/runs/r1", headers=A).status_code == 204
    assert (runtime.redis.exists(index), runtime.redis.exists(keys.step_index("acct_a", "r1_s2"))) == (0, 0)
    assert api.get("/letta/v1/steps/r1_s1", headers=A).status_code == 404


def _started_at(run_id: str, second: int) -> dict[str, object]:
    """A run.started created at this second of one minute, so the runs' order is the test's."""
    at = f"2025-01-01T00:00:{second:02}Z"
    return {"id": f"{run_id}_s", "type": "run.started", "run_id": run_id, "occurred_at": at}


def _index_reads(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[bytes]]]:
    """Every sorted-set key the runs listing reads ranges or ranks of, each with what it got."""
    reads: list[tuple[str, list[bytes]]] = []
    for name in ("zrange", "zrevrange", "zrank", "zrevrank"):
        command = getattr(runtime.redis, name)

        def spy(key: str, *args: Any, _command: Any = command, **kwargs: Any) -> Any:
            reply = _command(key, *args, **kwargs)
            reads.append((key, reply if isinstance(reply, list) else []))
            return reply

        monkeypatch.setattr(runtime.redis, name, spy)
    return reads


def test_an_accounts_run_list_pages_its_own_index_and_never_shows_another_accounts_run(
    api: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = [f"b{n:02}" for n in range(40)]
    post_events(api, *(_started_at(run_id, n) for n, run_id in enumerate(theirs)), headers=B)
    post_events(api, _started_at("a2", 21), headers=B)  # the other account's run of one of this one's ids
    post_events(api, _started_at("a1", 5), _started_at("a2", 20), _started_at("a3", 35))
    runtime.processor.drain(refs(*theirs, "a2", account="acct_b") + refs("a1", "a2", "a3", account="acct_a"))
    mine = refs("a1", "a2", "a3", account="acct_a")
    assert runtime.redis.zrange(keys.account_runs("acct_a"), 0, -1, withscores=True) == [
        (run.encode(), runtime.redis.zscore(keys.RUNS, run)) for run in mine
    ]  # the same members and scores as in the runs index
    assert runtime.redis.zcard(keys.account_runs("acct_b")) == 41
    reads = _index_reads(runtime, monkeypatch)

    pages = [
        ({"limit": 2}, ["a1", "a2"], True),
        ({"limit": 2, "after": "a2"}, ["a3"], False),
        ({"limit": 2, "order": "desc"}, ["a3", "a2"], True),
        ({"limit": 2, "order": "desc", "after": "a2"}, ["a1"], False),
        ({"limit": 1, "before": "a3"}, ["a2"], True),
    ]
    for params, expected, has_more in pages:
        answer = api.get("/v1/runs", params=params, headers=A).json()
        assert (ids(answer), answer["has_more"]) == (expected, has_more), params
        assert {run["account_id"] for run in answer["data"]} == {"acct_a"}

    assert {key for key, _ in reads} == {keys.account_runs("acct_a")}  # nothing of acct_b's runs is read
    assert {run for _, listed in reads for run in listed} == {run.encode() for run in mine}


def test_an_accounts_runs_come_a_chunk_of_its_own_index_at_a_time_and_gone_ones_leave_both_indexes(
    api: TestClient, runtime: Runtime
) -> None:
    theirs = [f"b{n:02}" for n in range(40)]
    post_events(api, *(_started_at(run_id, n) for n, run_id in enumerate(theirs)), headers=B)
    post_events(api, *(_started_at(f"a{n}", 4 + 7 * n) for n in range(1, 8)))
    runtime.processor.drain(refs(*theirs, account="acct_b") + refs(*(f"a{n}" for n in range(1, 8)), account="acct_a"))
    runtime.redis.delete(keys.run(keys.ref("acct_a", "a4")))  # as if its keys had expired before a sweep saw it
    store, after = runtime.store, keys.ref("acct_a", "a2")

    runtime.redis.config_resetstat()
    oldest_first = [state.run.id for state in store.runs(chunk=2, after=after, account="acct_a")]
    newest_first = [state.run.id for state in store.runs(chunk=2, after=after, account="acct_a", newest_first=True)]
    ranges = runtime.redis.info("commandstats")

    assert (oldest_first, newest_first) == (["a3", "a5", "a6", "a7"], ["a1"])
    assert ranges["cmdstat_zrange"]["calls"] == 4  # a3 a4 (gone), a5 a6, a7, none: acct_b's 40 runs unread
    assert ranges["cmdstat_zrevrange"]["calls"] == 2
    gone = b"acct_a/a4"
    assert gone not in runtime.redis.zrange(keys.account_runs("acct_a"), 0, -1)
    assert gone not in runtime.redis.zrange(keys.RUNS, 0, -1)

    runtime.redis.delete(keys.run(keys.ref("acct_b", "b05")))  # every account's listing prunes both too
    assert len(list(store.runs())) == len(theirs) - 1 + 6
    assert b"acct_b/b05" not in runtime.redis.zrange(keys.account_runs("acct_b"), 0, -1)
    assert [state.run.id for state in store.runs(account="acct_b")] == [r for r in theirs if r != "b05"]


def _mixed(api: TestClient, runtime: Runtime) -> list[str]:
    """A run of 9 steps on thread t1, drained in three commits, every third step left open: the
    closed ones live apart from the run's document."""
    _steps(api, runtime, count=9)
    closed = [n for n in range(1, 10) if n % 3]
    post_events(
        api, *({"id": f"r1_d{n}", "type": "step.completed", "run_id": "r1", "step_id": f"r1_s{n}"} for n in closed)
    )
    runtime.processor.drain(refs("r1", account="acct_a"))
    return [f"r1_s{n}" for n in range(1, 10)]


@pytest.mark.parametrize(
    ("path", "order", "closed_open"),
    [
        ("/v1/runs/r1/steps", "asc", ("completed", "in_progress")),
        ("/azure/threads/t1/runs/r1/steps", "desc", ("completed", "in_progress")),
        ("/letta/v1/runs/r1/steps", "desc", ("success", "pending")),
    ],
)
def test_pages_of_open_and_closed_steps_walk_every_step_once_in_creation_order(
    api: TestClient, runtime: Runtime, path: str, order: str, closed_open: tuple[str, str]
) -> None:
    every = _mixed(api, runtime)
    walked: list[dict[str, Any]] = []
    params: dict[str, object] = {"limit": 4, "order": order}
    while True:
        answer = api.get(path, params=params, headers=A).json()
        page = answer if isinstance(answer, list) else answer["data"]  # Letta's list is a bare array
        walked += page
        if len(page) < 4:
            break
        params["after"] = page[-1]["id"]
    expected = every if order == "asc" else every[::-1]
    assert [step["id"] for step in walked] == expected
    statuses = {step["id"]: step["status"] for step in walked}
    closed, still_open = closed_open
    assert [statuses[f"r1_s{n}"] for n in (1, 3, 8, 9)] == [closed, still_open, closed, still_open]


def test_one_step_is_found_open_or_closed_on_every_route(api: TestClient, runtime: Runtime) -> None:
    _mixed(api, runtime)
    for step_id, status in (("r1_s2", "completed"), ("r1_s3", "in_progress")):
        assert (
            api.get(f"/v1/runs/r1/steps/{step_id}", params={"format": "native"}, headers=A).json()["status"] == status
        )
        assert api.get(f"/azure/threads/t1/runs/r1/steps/{step_id}", headers=A).json()["status"] == status
        assert api.get(f"/letta/v1/steps/{step_id}", headers=A).json()["id"] == step_id
    assert api.get("/v1/runs/r1/steps/r1_s99", headers=A).status_code == 404
    assert api.get("/letta/v1/steps/r1_s2", headers=B).status_code == 404  # another account's, closed


def test_a_step_created_while_a_page_is_read_is_on_it_whole_or_not_at_all(
    api: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's ids and its steps come from one moment of the run: a step created between the
    reads (here, right after the run's document is read) is not named by a page that cannot show it."""
    _steps(api, runtime, count=3)
    read_document = Store.document

    def then_a_step_is_created(store: Store, run: keys.RunRef) -> RunState | None:
        state = read_document(store, run)
        monkeypatch.setattr(Store, "document", read_document)  # once
        post_events(api, {"id": "r1_c4", "type": "step.created", "run_id": "r1", "step_id": "r1_s4"})
        runtime.processor.drain(refs("r1", account="acct_a"))
        return state

    monkeypatch.setattr(Store, "document", then_a_step_is_created)
    answer = api.get("/v1/runs/r1/steps", params={"limit": 10}, headers=A).json()
    shown = ids(answer)
    assert shown[:3] == ["r1_s1", "r1_s2", "r1_s3"]
    assert (answer["first_id"], answer["last_id"]) == (shown[0], shown[-1])
    after = api.get("/v1/runs/r1/steps", params={"after": answer["last_id"]}, headers=A).json()
    assert shown + ids(after) == ["r1_s1", "r1_s2", "r1_s3", "r1_s4"]  # a poller following last_id misses none


@pytest.mark.parametrize("meanwhile", ["completed", "deleted"])
def test_a_run_that_leaves_the_filter_while_the_page_is_read_is_not_on_it(
    api: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """The page is chosen on the runs' documents and shown from the runs read whole just after: a
    run that changed in between so as to leave the filter, or was deleted, is on neither."""
    for run_id in ("r1", "r2", "r3"):
        _steps(api, runtime, run_id, count=1)
    read_whole = Store.get_many

    def then_r3_changes(store: Store, runs: list[keys.RunRef]) -> dict[keys.RunRef, RunState]:
        monkeypatch.setattr(Store, "get_many", read_whole)  # once
        if meanwhile == "deleted":
            assert api.delete("/v1/runs/r3", headers=A).status_code == 204
        else:
            post_events(api, {"id": "r3_z", "type": "run.completed", "run_id": "r3"})
            runtime.processor.drain(refs("r3", account="acct_a"))
        return read_whole(store, runs)

    monkeypatch.setattr(Store, "get_many", then_r3_changes)
    answer = api.get("/v1/runs", params={"status": "running"}, headers=A).json()
    assert (ids(answer), [run["status"] for run in answer["data"]]) == (["r1", "r2"], ["running", "running"])
    assert (answer["first_id"], answer["last_id"]) == ("r1", "r2")
