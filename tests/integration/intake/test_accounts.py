"""The trusted paths' account rule (issue 13): an event's account is its `data.account_id`; else the
account holding a run of its id, as recorded when that run's first event was published; else the
publisher's `account`, or RUNSTATE_DEFAULT_ACCOUNT. An id several accounts hold is refused at
publish, naming them; the CLI's reads resolve a run id the same way, `--account` choosing."""

import orjson
import pytest
from click.testing import CliRunner

from tests.support.processes import runstate
from tests.support.publishing import held
from worker.cli.main import main
from worker.runtime import Runtime
from worker.store.keys import ref


def _line(event_id: str, kind: str, run_id: str, **data: object) -> str:
    event: dict[str, object] = {"id": event_id, "type": kind, "run_id": run_id}
    if kind.startswith("step."):
        event["step_id"] = "s1"
    if data:
        event["data"] = data
    return orjson.dumps(event).decode()


def _publish(runtime: Runtime, *lines: str, account: str | None = None) -> list[tuple[int, str]]:
    errors = runtime.publisher.publish_lines(lines, account=account).errors
    run_ids = {orjson.loads(line)["run_id"] for line in lines}
    runtime.processor.drain(held(runtime, *run_ids))
    return errors


def _status(runtime: Runtime, account: str, run_id: str) -> tuple[str, list[str]] | None:
    state = runtime.store.get(ref(account, run_id))
    return None if state is None else (state.run.status.value, [s.status.value for s in state.steps.values()])


def test_steps_after_a_run_started_naming_the_account_join_its_run_in_one_call_or_many(runtime: Runtime) -> None:
    assert (
        _publish(runtime, _line("a", "run.started", "r1", account_id="acct_x"), _line("b", "step.created", "r1")) == []
    )
    assert _publish(runtime, _line("c", "step.completed", "r1")) == []  # a later publish: the same run
    assert _publish(runtime, _line("d", "run.completed", "r1"), account="acct_other") == []  # its account wins

    assert _status(runtime, "acct_x", "r1") == ("completed", ["completed"])
    assert runtime.store.owners(["r1"]) == {"r1": {"acct_x"}}  # nothing went to another account


def test_an_id_nobody_holds_goes_to_the_publishers_account_else_the_default(runtime: Runtime) -> None:
    assert _publish(runtime, _line("a", "step.created", "r_mine"), account="acct_p") == []
    assert _publish(runtime, _line("a", "step.created", "r_dflt")) == []

    assert (_status(runtime, "acct_p", "r_mine"), _status(runtime, "default", "r_dflt")) == (
        ("running", ["in_progress"]),
        ("running", ["in_progress"]),
    )


def test_an_id_several_accounts_hold_is_refused_naming_them_unless_the_publisher_chooses(runtime: Runtime) -> None:
    started = [_line("a", "run.started", "r_two", account_id=acct) for acct in ("acct_2", "acct_1")]
    assert _publish(runtime, *started) == []

    refused = _publish(runtime, _line("ok", "run.started", "r_other"), _line("s", "step.created", "r_two"))
    chosen = _publish(runtime, _line("s", "step.created", "r_two"), account="acct_2")

    assert refused == [
        (2, "run_id: run 'r_two' is held by several accounts (acct_1, acct_2); choose one with --account")
    ]
    assert chosen == []
    assert (_status(runtime, "acct_1", "r_two"), _status(runtime, "acct_2", "r_two")) == (
        ("running", []),
        ("running", ["in_progress"]),
    )


def test_an_account_that_is_not_an_id_is_refused_before_anything_is_published(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match=r"account 'a/b' must be 1–128 characters"):
        runtime.publisher.publish_lines([_line("a", "run.started", "r")], account="a/b")
    assert runtime.store.owners(["r"]) == {"r": set()}


def test_cli_reads_resolve_a_run_id_and_refuse_one_line_when_several_accounts_hold_it(
    redis_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    lines = [_line("a", "run.started", "r_cli", account_id="acct_1"), _line("b", "step.created", "r_cli")]
    published = runstate(["publish", "-"], redis_url, stdin="\n".join(lines).encode())
    assert published.returncode == 0, published.stderr
    runner = CliRunner()
    assert runner.invoke(main, ["worker", "--burst"]).exit_code == 0
    one = runner.invoke(main, ["show", "run", "r_cli"])
    assert (one.exit_code, orjson.loads(one.stdout)["account_id"]) == (0, "acct_1")

    other = runstate(
        ["publish", "--account", "acct_2", "-"], redis_url, stdin=_line("z", "run.started", "r_x").encode()
    )
    assert other.returncode == 0, other.stderr
    second = _line("c", "run.started", "r_cli", account_id="acct_2")
    assert runner.invoke(main, ["publish", "-"], input=second).exit_code == 0
    assert runner.invoke(main, ["worker", "--burst"]).exit_code == 0

    expected = "runstate: run 'r_cli' is held by several accounts (acct_1, acct_2); choose one with --account\n"
    for command in (["show", "run"], ["steps"], ["history"], ["delete", "run"]):
        ambiguous = runner.invoke(main, [*command, "r_cli"])
        assert (ambiguous.exit_code, ambiguous.stderr, ambiguous.stdout) == (1, expected, "")
    steps = runner.invoke(main, ["steps", "r_cli", "--account", "acct_1"])
    assert [s["id"] for s in orjson.loads(steps.stdout)] == ["s1"]
    assert orjson.loads(runner.invoke(main, ["steps", "r_cli", "--account", "acct_2"]).stdout) == []
    assert runner.invoke(main, ["delete", "run", "r_cli", "--account", "acct_2"]).exit_code == 0
    assert orjson.loads(runner.invoke(main, ["show", "run", "r_cli"]).stdout)["account_id"] == "acct_1"
    assert _status(runtime, "acct_2", "r_x") == ("running", [])
    bad = runner.invoke(main, ["show", "run", "r_cli", "--account", "a b"])
    assert (bad.exit_code, "--account" in bad.stderr) == (2, True)
