"""Slots: the room each subscription has left, and how far a full one's surplus is pushed back."""

import asyncio

import pytest

from worker.store.sending import Room
from worker.webhooks import slots
from worker.webhooks.slots import Slots


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(slots.time, "monotonic", lambda: now[0])
    return now


def test_a_full_subscription_has_its_surplus_pushed_back_until_a_slot_may_free(clock: list[float]) -> None:
    taken = Slots(total=10, per_subscription=2, longest=15)
    first = taken.take("sub_a")
    taken.take("sub_a")
    clock[0] += 0.05
    assert taken.has_room("sub_a") is False
    assert taken.rooms() == {"sub_a": Room(start=0, queue=2, defer_ms=50)}  # as many again may wait in its queue
    taken.queue("sub_a", 2)
    assert (taken.rooms(), taken.free()) == ({"sub_a": Room(start=0, queue=0, defer_ms=50)}, 6)
    taken.give_back("sub_a", first)  # took 50 ms: its next slot is expected about that soon
    taken.queue("sub_a", -1)
    assert (taken.has_room("sub_a"), taken.rooms(), taken.free()) == (
        True,
        {"sub_a": Room(start=1, queue=1, defer_ms=50)},
        8,
    )


def test_a_fast_subscription_is_pushed_back_no_less_than_the_floor(clock: list[float]) -> None:
    taken = Slots(total=10, per_subscription=1, longest=15)
    taken.give_back("sub_a", taken.take("sub_a"))  # took no time at all
    taken.take("sub_a")
    assert taken.rooms() == {"sub_a": Room(start=0, queue=1, defer_ms=round(slots.MIN_DEFER * 1000))}
    assert taken.room() == Room(start=1, queue=1, defer_ms=round(slots.MIN_DEFER * 1000))  # nothing in flight


def test_attempts_that_keep_ending_are_not_taken_for_a_hang_by_the_oldest_one(clock: list[float]) -> None:
    taken = Slots(total=10, per_subscription=3, longest=15)
    taken.take("sub_a")  # this one takes long...
    clock[0] += 2.9
    quick = taken.take("sub_a")
    clock[0] += 0.1
    taken.give_back("sub_a", quick)  # ...but the subscription frees slots every 100 ms
    assert taken.rooms() == {"sub_a": Room(start=2, queue=3, defer_ms=100)}


def test_a_hanging_subscription_has_its_surplus_pushed_back_by_how_long_it_has_hung(clock: list[float]) -> None:
    taken = Slots(total=10, per_subscription=2, longest=15)
    taken.take("sub_hang")
    clock[0] += 3
    taken.take("sub_hang")
    taken.take("sub_ok")
    taken.queue("sub_hang", 2)
    assert taken.rooms() == {
        "sub_hang": Room(start=0, queue=0, defer_ms=3000),
        "sub_ok": Room(start=1, queue=2, defer_ms=5),
    }
    clock[0] += 60
    assert taken.rooms()["sub_hang"] == Room(start=0, queue=0, defer_ms=15_000)  # never past the attempt timeout


def test_a_subscription_slow_on_average_stays_slow_after_its_attempts_end(clock: list[float]) -> None:
    taken = Slots(total=10, per_subscription=1, longest=15)
    started = taken.take("sub_slow")
    clock[0] += 5
    taken.give_back("sub_slow", started)
    assert taken.rooms() == {}  # nothing in flight: the claim gives it its whole room
    taken.take("sub_slow")
    assert taken.rooms() == {"sub_slow": Room(start=0, queue=1, defer_ms=5000)}


def test_giving_a_slot_back_wakes_the_claim_loop(clock: list[float]) -> None:
    async def main() -> bool:
        taken = Slots(total=1, per_subscription=1, longest=15)
        started = taken.take("sub_a")
        asyncio.get_running_loop().call_soon(taken.give_back, "sub_a", started)
        await asyncio.wait_for(taken.freed.wait(), 5)
        return taken.freed.is_set()

    assert asyncio.run(main()) is True
