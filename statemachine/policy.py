"""The settings the rules depend on, passed in by the caller (the domain reads no environment)."""

from dataclasses import dataclass

from statemachine.pricing import Pricer


@dataclass(frozen=True, slots=True)
class Policy:
    default_account: str = "default"
    default_run_timeout: float | None = 3600  # seconds; None or below 1: no timeout
    default_waiting_timeout: float | None = None
    default_step_timeout: float | None = None
    clock_skew_ms: int = 5_000  # an occurred_at further ahead of the apply time is clamped to it
    pricer: Pricer | None = None  # prices usage that came without a cost; None: unpriced
    default_inactivity_timeout: float | None = None  # seconds of silence a running run may keep


def deadline_after(start_ms: int, seconds: float | None) -> int | None:
    """`start + seconds`, or None when the timeout is absent, zero, negative or below one second."""
    if seconds is None or seconds < 1:
        return None
    return start_ms + int(seconds * 1000)


def effective_seconds(seconds: float | None) -> float | None:
    """A timeout as stored: None when it is absent, zero, negative or below one second."""
    return None if seconds is None or seconds < 1 else seconds
