"""The README's Python example runs as written, against the test redis-server."""

import contextlib
import io
import re

from tests.support.paths import ROOT
from worker.runtime import Runtime


def test_readme_python_example_runs_and_prints_what_it_says(runtime: Runtime) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python\n\n```python\n(.*?)```", readme, re.S)
    assert block is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = printed.getvalue().splitlines()
    assert lines[0] == "2 []"
    assert lines[1] == "completed"
    assert "'to': 'completed'" in lines[2]
