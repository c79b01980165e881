"""Cursor pages, as OpenAI-style lists (runstate's, Azure's) and Letta's lists page: `limit` items
in `order`, after the item `after` and before the item `before` (ids). With `before` alone the
page is the `limit` items nearest before it, so that paging backwards (Letta's SDK passes the
first id of a page as the next `before`) walks every item once. An id that names nothing
listable is a 400, never a silent restart at the first page."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Query

from worker.api.errors import ApiError

Cursor = Annotated[str | None, Query(max_length=128)]
Limit = Annotated[int, Query(ge=1, le=100)]


class Order(StrEnum):
    """Creation order, oldest first or newest first."""

    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class Page:
    ids: list[str]
    has_more: bool  # more items lie beyond the page, away from the cursor it was taken from


def unknown_cursor(name: str, value: str, what: str) -> ApiError:
    return ApiError(400, f"{name}: {value!r} is not one of the {what} listed here")


def page_of(ids: Sequence[str], *, limit: int, order: Order, after: str | None, before: str | None, what: str) -> Page:
    """The page of `ids` (in creation order) that the cursors name."""
    ordered = list(ids) if order is Order.ASC else list(reversed(ids))
    position = {item: index for index, item in enumerate(ordered)}
    start, end = 0, len(ordered)
    if after is not None:
        if after not in position:
            raise unknown_cursor("after", after, what)
        start = position[after] + 1
    if before is not None:
        if before not in position:
            raise unknown_cursor("before", before, what)
        end = max(start, position[before])
    if after is None and before is not None:
        first = max(start, end - limit)
        return Page(ordered[first:end], first > start)
    last = min(end, start + limit)
    return Page(ordered[start:last], last < end)


def envelope(data: list[dict[str, object]], page: Page) -> dict[str, object]:
    """The OpenAI-style list envelope (Azure's exactly): `object`, `data`, `first_id`, `last_id`, `has_more`."""
    return {
        "object": "list",
        "data": data,
        "first_id": page.ids[0] if page.ids else None,
        "last_id": page.ids[-1] if page.ids else None,
        "has_more": page.has_more,
    }
