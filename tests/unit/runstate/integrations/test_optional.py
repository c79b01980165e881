"""The adapters' frameworks are optional extras: `runstate` imports without them, and an adapter
whose framework is missing says which extra to install."""

import subprocess
import sys

import pytest

FRAMEWORKS = ("agents", "langchain_core", "langgraph", "openai")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_importing_runstate_imports_no_framework() -> None:
    done = _python(
        "import sys, runstate, runstate.integrations, runstate.integrations.sender\n"
        f"print(sorted(name for name in {FRAMEWORKS!r} if name in sys.modules))"
    )

    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


@pytest.mark.parametrize(
    ("module", "missing", "extra"),
    [("openai_agents", "agents", "runstate[openai-agents]"), ("langchain", "langchain_core", "runstate[langchain]")],
)
def test_an_adapter_without_its_framework_names_the_extra_to_install(module: str, missing: str, extra: str) -> None:
    done = _python(
        f"import sys; sys.modules[{missing!r}] = None  # as if it were not installed\n"
        f"import runstate.integrations.{module}"
    )

    assert done.returncode == 1
    assert f"ImportError: runstate.integrations.{module} needs" in done.stderr
    assert f"pip install '{extra}'" in done.stderr
