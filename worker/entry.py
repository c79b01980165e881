"""The `runstate` command's entry point (and `python -m worker`'s).

Before anything imports structlog: its console renderer imports `rich`, when it is installed, to
draw tracebacks, which adds a fifth to every command's start (a burst worker's included). In
runstate's own processes logs are JSON or plain lines, so rich is kept out; the library itself
(`import worker...`) leaves it alone.
"""

import sys


def main() -> None:
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # `import rich` now raises ImportError
    from worker.cli.main import main as cli

    cli()
