"""statemachine is the pure domain (docs/design.md, "Layout"; docs/style.md): no I/O, no clock, no environment.

Every .py file in statemachine/ is parsed and its imports and calls are checked.
"""

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGE = ROOT / "statemachine"
FORBIDDEN_MODULES = {"redis", "rq", "structlog", "fakeredis", "worker", "httpx", "requests", "socket"}
# attribute chains that read the environment or the clock
FORBIDDEN_NAMES = {
    "os.environ",
    "os.getenv",
    "os.putenv",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "date.today",
    "datetime.date.today",
}
# `from os import environ` and friends bring the same things in under a bare name
FORBIDDEN_FROM = {("os", "environ"), ("os", "getenv"), ("time", "time"), ("time", "time_ns"), ("time", "monotonic")}


def dotted(node: ast.AST) -> str | None:
    """`os.environ` for the expression os.environ; None for anything that is not a plain name chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import, environment read or clock read in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where} imports from {node.module}")
            found += [
                f"{where} imports {node.module}.{a.name}" for a in node.names if (node.module, a.name) in FORBIDDEN_FROM
            ]
        elif isinstance(node, ast.Attribute) and dotted(node) in FORBIDDEN_NAMES:
            found.append(f"{where} uses {dotted(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"__import__", "open"}:
            found.append(f"{where} calls {node.func.id}")
        elif isinstance(node, ast.Call) and dotted(node.func) == "importlib.import_module":
            found.append(f"{where} calls importlib.import_module")
    return found


MODULES = sorted(PACKAGE.glob("**/*.py"))


def test_the_domain_package_is_where_this_test_looks() -> None:
    assert {m.name for m in MODULES} >= {"apply.py", "events.py", "lifecycle.py", "models.py", "status.py"}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_a_domain_module_does_no_io_reads_no_clock_and_no_environment(module: Path) -> None:
    assert violations(module.read_text(encoding="utf-8"), module.name) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import redis", "imports redis"),
        ("import rq.job", "imports rq.job"),
        ("from structlog import get_logger", "imports from structlog"),
        ("from worker.store.runs import Store", "imports from worker.store.runs"),
        ("import fakeredis as fr", "imports fakeredis"),
        ("import httpx", "imports httpx"),
        ("import requests", "imports requests"),
        ("import socket", "imports socket"),
        ("import os\nos.environ['X']", "uses os.environ"),
        ("import os\nos.environ.get('X')", "uses os.environ"),
        ("import os\nos.getenv('X')", "uses os.getenv"),
        ("from os import environ", "imports os.environ"),
        ("import time\ntime.time()", "uses time.time"),
        ("from time import time", "imports time.time"),
        ("from datetime import datetime\ndatetime.now()", "uses datetime.now"),
        ("import datetime\ndatetime.datetime.now(datetime.UTC)", "uses datetime.datetime.now"),
        ("from datetime import date\ndate.today()", "uses date.today"),
        ("__import__('redis')", "calls __import__"),
        ("open('x')", "calls open"),
    ],
)
def test_the_check_catches_each_forbidden_thing(source: str, found: str) -> None:
    assert [v.split(" ", 1)[1] for v in violations(source)] == [found]


def test_the_check_lets_pure_code_through() -> None:
    source = (
        "import os.path\nfrom datetime import UTC, datetime\nimport transitions\nfrom pydantic import BaseModel\n"
        "datetime.fromtimestamp(0, UTC)\nos.path.join('a', 'b')\n"
    )

    assert violations(source) == []
