"""The README's curl commands for the HTTP API, replayed in order against the app: each one works."""

import re
import shlex
from typing import Any

import pytest

from tests.support.apikit import api_client
from tests.support.paths import ROOT
from tests.support.publishing import refs
from worker.runtime import Runtime

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _curl_commands() -> list[list[str]]:
    section = README[README.index("## HTTP API\n") : README.index("## Python\n")]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.startswith("curl ")]


def _request(command: list[str]) -> dict[str, Any]:
    """curl's -X, -H and -d (with `@- <<< body`) as TestClient arguments."""
    request: dict[str, Any] = {"method": "GET", "headers": {}}
    args = iter(command[1:])
    for arg in args:
        if arg == "-X":
            request["method"] = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(": ")
            request["headers"][name] = value
        elif arg == "-d":
            body = next(args)
            if body == "@-":
                assert next(args) == "<<<"
                body = next(args)
            request["content"] = body
        elif arg != "-s":
            request["url"] = arg.removeprefix("localhost:8000")
    return request


def test_the_readme_curl_commands_work_in_order(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _curl_commands()
    assert len(commands) == 7
    answers = []
    subscription = "sub_…"
    with api_client(runtime, monkeypatch, RUNSTATE_API_TOKENS="tok_a:acct_a") as api:
        for command in commands:
            request = _request(command)
            request["url"] = request["url"].replace("sub_…", subscription)
            answer = api.request(**request)
            answers.append((request["method"], request["url"], answer.status_code))
            if request["url"] == "/v1/webhooks" and answer.status_code == 201:
                subscription = answer.json()["id"]
            runtime.processor.drain(refs("run_1", account="acct_a"))  # what a worker does between the commands
    assert answers == [
        ("POST", "/v1/events", 202),
        ("GET", "/v1/run/run_1", 200),
        ("POST", "/v1/run/run_1/cancel", 202),
        ("DELETE", "/v1/runs/run_1", 204),
        ("POST", "/v1/webhooks", 201),
        ("GET", "/v1/webhooks", 200),
        ("DELETE", f"/v1/webhooks/{subscription}", 204),
    ]
