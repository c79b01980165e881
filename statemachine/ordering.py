"""Sequence order (docs/design.md, "Events": `sequence`): which arrived events may be applied now.

Events that carry a `sequence` are applied in sequence order. One that arrives ahead of a
gap is held until the gap fills or until it has waited the reorder window; then the gap is
skipped (and counted) and what is held goes on in order. Events without a sequence are
applied in arrival order, never held. An event at or below the applied sequence passes
straight through: `apply_event` finds it stale.
"""

from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Held(BaseModel):
    """An event waiting for the sequence numbers before it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    since: int  # ms: when it started waiting
    item: str  # the queued event, opaque here


class Arrival(NamedTuple, Generic[T]):
    sequence: int | None
    item: T


@dataclass(slots=True)
class Release:
    ready: list[str] = field(default_factory=list)  # in the order to apply them
    held: list[Held] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # skipped (first, last) sequence numbers
    released_through: int = 0  # every sequence up to this one has been released (or skipped)

    def due(self, window_ms: int) -> int | None:
        """When the oldest held event's wait ends, or None when nothing is held."""
        return min(h.since for h in self.held) + window_ms if self.held else None


def release(applied: int, held: list[Held], arrivals: list[Arrival[str]], *, now: int, window_ms: int) -> Release:
    """Split held and newly arrived events into what to apply now (in order) and what still waits."""
    out = Release()
    waiting: dict[int, list[Held]] = {}
    for h in held:
        waiting.setdefault(h.sequence, []).append(h)
    expected = applied + 1

    def drain() -> None:
        nonlocal expected
        while expected in waiting:
            out.ready.extend(h.item for h in waiting.pop(expected))  # a repeat follows its first copy
            expected += 1

    drain()
    for arrival in arrivals:
        sequence = arrival.sequence
        if sequence is None or sequence < expected:
            out.ready.append(arrival.item)
        elif sequence == expected:
            out.ready.append(arrival.item)
            expected += 1
            drain()
        else:  # ahead of a gap, or a repeat of one that waits: it waits too, beside the first copy
            waiting.setdefault(sequence, []).append(Held(sequence=sequence, since=now, item=arrival.item))
    while waiting and min(h.since for group in waiting.values() for h in group) + window_ms <= now:
        first_held = min(waiting)
        out.gaps.append((expected, first_held - 1))
        expected = first_held
        drain()
    out.held = [h for sequence in sorted(waiting) for h in waiting[sequence]]
    out.released_through = expected - 1
    return out
