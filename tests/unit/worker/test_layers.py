"""worker/ has one dependency direction (docs/architecture.md, "The dependency rule"):
faces (cli, then api) → composition (runtime, processes, reads) → processes (drain, webhooks,
intake; siblings never import each other) → store → statemachine. `worker.settings` and
`worker.logs` are leaves anyone may import.

Every import is checked, module-level and inside functions; only `if TYPE_CHECKING:` blocks
are exempt (they never run).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
WORKER = ROOT / "worker"

LEAVES = {"worker.settings", "worker.logs"}
# higher ranks may import lower ones; the same rank only within one unit
RANKS = {
    "worker.store": 1,
    "worker.intake": 2,
    "worker.drain": 2,
    "worker.webhooks": 2,
    "worker.runtime": 3,
    "worker.processes": 3,
    "worker.reads": 3,
    "worker.api": 4,
    "worker.cli": 5,
    "worker.entry": 6,
    "worker.__main__": 7,
}
# composition modules are one unit: processes builds on runtime
UNITS = {"worker.runtime": "composition", "worker.processes": "composition", "worker.reads": "composition"}


def unit_of(module: str) -> str | None:
    """The subsystem a dotted module name belongs to (`worker.store.keys` → `worker.store`)."""
    if module == "worker" or not module.startswith("worker."):
        return None
    parts = module.split(".")
    return ".".join(parts[:2])


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted module) for each import that runs, relative ones resolved against `module`."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, *([base] if base else [])])
            # `from worker.store import keys` imports the submodule worker.store.keys
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def allowed(importer: str, imported: str) -> bool:
    source, target = unit_of(importer), unit_of(imported)
    if target is None or source == target or imported in LEAVES:
        return True
    target_leaf = next((leaf for leaf in LEAVES if imported.startswith(leaf + ".")), None)
    if target_leaf is not None:
        return True
    if source in LEAVES:
        return False  # a leaf imports nothing of worker
    assert source in RANKS, f"{importer} belongs to no layer: add it to RANKS"
    assert target in RANKS, f"{imported} belongs to no layer: add it to RANKS"
    if RANKS[target] < RANKS[source]:
        return True
    return RANKS[target] == RANKS[source] and UNITS.get(source, source) == UNITS.get(target, target)


def violations(source: str, module: str) -> list[str]:
    return [
        f"{module}:{line} imports {imported}"
        for line, imported in imported_modules(source, module)
        if not allowed(module, imported)
    ]


def worker_modules() -> list[tuple[str, Path]]:
    modules = []
    for path in sorted(WORKER.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules.append((name, path))
    return modules


def test_every_module_of_worker_keeps_the_dependency_direction() -> None:
    found = [v for name, path in worker_modules() for v in violations(path.read_text(), name)]
    assert found == []


def test_every_subpackage_says_what_it_holds_and_what_it_may_import() -> None:
    undocumented = []
    for package in sorted(p for p in WORKER.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        if "may import" not in doc.lower():
            undocumented.append(package.name)
    assert undocumented == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # a lower layer importing a higher one, at module level and inside a function
        ("worker.store.runs", "from worker.drain.processor import Processor\n", ["worker.drain.processor.Processor"]),
        ("worker.drain.turns", "def f():\n    from worker.runtime import Runtime\n", ["worker.runtime.Runtime"]),
        ("worker.intake.publisher", "import worker.drain.jobs\n", ["worker.drain.jobs"]),
        # siblings of one layer
        ("worker.drain.processor", "from worker.webhooks import ssrf\n", ["worker.webhooks.ssrf"]),
        (
            "worker.webhooks.sender",
            "from worker.intake.publisher import Publisher\n",
            ["worker.intake.publisher.Publisher"],
        ),
        # the API below the CLI, the store below everything
        ("worker.api.app", "from worker.cli.main import main\n", ["worker.cli.main.main"]),
        ("worker.store.keys", "from ..drain import jobs\n", ["worker.drain.jobs"]),
        # a leaf imports nothing of worker
        ("worker.settings", "from worker.store import keys\n", ["worker.store.keys"]),
    ],
)
def test_a_lower_layer_importing_a_higher_one_is_found(module: str, source: str, expected: list[str]) -> None:
    assert [v.rsplit(" ", 1)[1] for v in violations(source, module)] == expected


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("worker.api.runs", "from worker.store.runs import Store\nfrom worker.runtime import Runtime\n"),
        ("worker.cli.main", "def serve():\n    from worker.api.app import create_app\n"),
        (
            "worker.drain.turns",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from worker.runtime import R\n",
        ),
        ("worker.processes", "from worker.runtime import Runtime\nfrom worker.drain import jobs\n"),
        ("worker.store.runs", "from worker.settings import Settings\nfrom statemachine.apply import apply_event\n"),
    ],
)
def test_imports_downwards_and_type_checking_blocks_are_allowed(module: str, source: str) -> None:
    assert violations(source, module) == []


def _package_modules(package: str) -> list[tuple[str, Path]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def test_the_producers_package_and_the_service_never_import_each_other() -> None:
    """`runstate/` is what a producer installs beside its agent: it speaks HTTP only, so it takes
    nothing of the service, and the service nothing of it."""
    crossings = [
        f"{name}:{line} imports {imported}"
        for package, foreign in (("runstate", ("worker", "statemachine")), ("worker", ("runstate",)))
        for name, path in _package_modules(package)
        for line, imported in imported_modules(path.read_text(), name)
        if imported.split(".")[0] in foreign
    ]
    assert crossings == []
