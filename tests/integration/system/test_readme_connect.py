"""README "Connect your agents": the exporter's environment and the Python client, as written,
against a real `runstate serve` and worker."""

import re
import shlex

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import runstate
from tests.support.paths import ROOT
from tests.support.processes import wait_until
from tests.support.servekit import serving

pytestmark = pytest.mark.integration
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Connect your agents\n") : README.index("### OTLP trace ingest\n")]


def block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", SECTION, re.S)
    assert found is not None
    return found.group(1)


def test_the_readme_exporter_environment_and_client_work_as_written(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(redis_url) as served:
        for line in block("sh").splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, shlex.split(value)[0].replace("http://localhost:8000", served.url))
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
        with provider.get_tracer("readme").start_as_current_span(
            "invoke_agent", attributes={"gen_ai.agent.name": "a"}
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        exec(block("python").replace("http://localhost:8000", served.url), {})  # noqa: S102 - the README's own code
        with runstate.Client(served.url, served.token) as client:
            wait_until(lambda: (client.run("run_readme") or {}).get("status") == "completed")
            wait_until(lambda: (client.run(trace_id) or {}).get("status") == "completed")
            traced, written = client.run(trace_id), client.run("run_readme")
            on_thread = [run["id"] for run in client.find_runs(thread_id="thread_1")]

    assert traced is not None
    assert written is not None
    assert (traced["runnable_id"], written["runnable_id"], written["total_input_tokens"]) == ("a", "support-bot", 812)
    assert written["result"]["outputs"] == {"answer": "42"}
    assert written["total_token_cost_usd"] > 0  # priced from genai-prices: the client sent no cost
    assert on_thread == ["run_readme"]
