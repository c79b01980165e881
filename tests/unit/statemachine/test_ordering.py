"""Sequence order: events are released in sequence order; a gap holds what is after it for the window."""

from hypothesis import given
from hypothesis import strategies as st

from statemachine.ordering import Arrival, Held, release

WINDOW = 30_000


def arrivals(*items: tuple[int | None, str]) -> list[Arrival[str]]:
    return [Arrival(sequence, item) for sequence, item in items]


def test_in_order_events_are_released_at_once() -> None:
    out = release(0, [], arrivals((1, "a"), (2, "b"), (3, "c")), now=0, window_ms=WINDOW)
    assert (out.ready, out.held, out.gaps) == (["a", "b", "c"], [], [])


def test_an_event_ahead_of_a_gap_waits_and_the_gap_filler_releases_it() -> None:
    first = release(0, [], arrivals((2, "b"), (3, "c")), now=100, window_ms=WINDOW)
    assert first.ready == []
    assert first.held == [Held(sequence=2, since=100, item="b"), Held(sequence=3, since=100, item="c")]
    assert first.due(WINDOW) == 100 + WINDOW

    second = release(0, first.held, arrivals((1, "a")), now=200, window_ms=WINDOW)
    assert (second.ready, second.held, second.gaps) == (["a", "b", "c"], [], [])


def test_after_the_window_the_gap_is_skipped_and_counted() -> None:
    held = release(3, [], arrivals((5, "e"), (6, "f"), (9, "i")), now=0, window_ms=WINDOW).held
    out = release(3, held, [], now=WINDOW, window_ms=WINDOW)
    assert (out.ready, out.held, out.gaps) == (["e", "f", "i"], [], [(4, 4), (7, 8)])


def test_before_the_window_ends_nothing_held_is_released() -> None:
    held = release(0, [], arrivals((2, "b")), now=0, window_ms=WINDOW).held
    out = release(0, held, [], now=WINDOW - 1, window_ms=WINDOW)
    assert (out.ready, len(out.held), out.gaps) == ([], 1, [])


def test_events_without_sequence_pass_in_arrival_order_past_held_ones() -> None:
    out = release(0, [], arrivals((2, "b"), (None, "x"), (1, "a"), (None, "y")), now=0, window_ms=WINDOW)
    assert out.ready == ["x", "a", "b", "y"]


def test_an_event_at_or_below_the_applied_sequence_passes_through_to_be_found_stale() -> None:
    out = release(5, [], arrivals((5, "old"), (3, "older"), (6, "new")), now=0, window_ms=WINDOW)
    assert out.ready == ["old", "older", "new"]


@given(st.permutations(list(range(1, 12))), st.integers(min_value=1, max_value=11))
def test_any_arrival_order_is_released_in_sequence_order(order: list[int], cut: int) -> None:
    """However the events arrive, split over two drains, what is released is 1..n in order."""
    items = [Arrival(n, f"e{n}") for n in order]
    first = release(0, [], items[:cut], now=0, window_ms=WINDOW)
    applied = len(first.ready)
    second = release(applied, first.held, items[cut:], now=1, window_ms=WINDOW)
    assert first.ready + second.ready == [f"e{n}" for n in range(1, 12)]
    assert second.held == []


def test_a_repeat_of_a_waiting_sequence_waits_beside_the_first_copy() -> None:
    first = release(1, [], arrivals((3, "c"), (3, "c again")), now=0, window_ms=WINDOW)
    assert (first.ready, [h.item for h in first.held]) == ([], ["c", "c again"])
    filled = release(1, first.held, arrivals((2, "b")), now=1, window_ms=WINDOW)
    assert (filled.ready, filled.held, filled.released_through) == (["b", "c", "c again"], [], 3)
