"""What `runstate worker` imports to start: a burst worker pays its start once per process, so
the libraries only other commands use stay out of it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOT_FOR_THE_WORKER = ("httpx", "fastapi", "genai_prices")  # the SSRF guard, the API, the price table


def test_the_worker_command_starts_without_httpx_fastapi_or_genai_prices() -> None:
    probe = (
        "import sys; import worker.cli.main, worker.processes; "
        f"print(' '.join(m for m in {NOT_FOR_THE_WORKER!r} if m in sys.modules))"
    )

    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)

    assert done.stdout.strip() == ""
