"""The README's two SDK snippets run as written against `runstate serve` over https."""

import contextlib
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.paths import ROOT
from tests.support.sdkkit import Served, sample_runs, serve_https
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def served(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_https(redis_server, tmp_path_factory.mktemp("tls"))


def run_snippet(index: int) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Read runstate with the SDKs you already use\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[index], "README.md", "exec"), {})  # noqa: S102 - our own README
    return printed.getvalue().splitlines()


@pytest.fixture
def sdk_env(served: Served, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    sample_runs(served, runtime)
    monkeypatch.setenv("RUNSTATE_URL", served.url)
    monkeypatch.setenv("RUNSTATE_TOKEN", "tok_a")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(served.ca))  # requests (azure-core) trusts the test's authority
    monkeypatch.setenv("SSL_CERT_FILE", str(served.ca))  # and so does httpx (letta-client)


@pytest.mark.usefixtures("sdk_env")
def test_the_readmes_azure_snippet_prints_the_steps_and_the_error() -> None:
    assert run_snippet(0) == [
        "s1 RunStepStatus.COMPLETED 12",  # the SDK's own enum
        "s2 RunStepStatus.FAILED 0",
        "s3 RunStepStatus.COMPLETED 12",
        "s4 RunStepStatus.COMPLETED 12",
        "s5 RunStepStatus.IN_PROGRESS None",
        "tool_error: invoice service answered 503",
    ]


@pytest.mark.usefixtures("sdk_env")
def test_the_readmes_letta_snippet_prints_the_run_the_steps_and_the_error() -> None:
    assert run_snippet(1) == ["running", "['s5', 's4', 's3', 's2', 's1']", "tool_error"]
