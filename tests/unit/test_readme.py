"""The README shows what the code does: its diagrams come from the Machine, its commands exist."""

import re

import pytest

from statemachine.lifecycle import RUN, STEP, Lifecycle, mermaid_diagram
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("lifecycle", [RUN, STEP], ids=["run", "step"])
def test_readme_diagram_is_the_one_transitions_renders(lifecycle: Lifecycle) -> None:
    block = re.search(rf"<!-- diagram:{lifecycle.kind} -->\n```mermaid\n(.*?)```\n<!-- /diagram -->", README, re.S)
    assert block is not None
    assert block.group(1) == mermaid_diagram(lifecycle) + "\n"


def test_readme_test_command_is_the_one_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "ruff check . && ruff format --check . && mypy && python3 -m pytest"
    assert command in README
    assert command in ci
    assert "bash .ci/run" in README


def test_procfile_names_a_worker_process() -> None:
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    assert "worker: runstate worker" in procfile.splitlines()
    assert "webhooks: runstate webhooks deliver" in procfile.splitlines()
