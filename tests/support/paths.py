"""Files of the repository that tests read: the README, the example event log, shared test data."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "agent-runs.jsonl"
DATA = Path(__file__).resolve().parent / "data"
