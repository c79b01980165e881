"""Time as integer milliseconds since the Unix epoch, and its RFC 3339 spelling.

Stored times are whole milliseconds: exact, compact, and cheap to compare.
"""

import functools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# RFC 3339 date-time with a mandatory offset; naive times are refused.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")

# Unix seconds accepted as input: 1970 up to the end of year 9989, so that every deadline an
# event can set (at most ten years on: bounds.MAX_TIMEOUT_SECONDS) is still a date every output
# can spell (Python's datetime, and so RFC 3339 here, ends with year 9999).
MAX_UNIX_SECONDS = 253_086_767_999
LATEST = "9989-12-31T23:59:59.999Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_time(value: object) -> int:
    """Milliseconds from an RFC 3339 string with an offset, or Unix seconds as a JSON number.

    Raises ValueError naming the rule that the value breaks.
    """
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 time with an offset or Unix seconds, not a boolean")
    if isinstance(value, int | float):
        if value != value or not 0 <= value <= MAX_UNIX_SECONDS:  # NaN compares unequal to itself
            raise ValueError(f"Unix seconds must be between 0 and {MAX_UNIX_SECONDS} (got {value!r})")
        return int(Decimal(repr(value)) * 1000)  # exact: floats like .001 must not lose a millisecond
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError(
                f"must be an RFC 3339 time with an offset, like 2026-11-25T10:00:03.250Z (got {value[:40]!r})"
            )
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError as exc:
            raise ValueError(f"is not a valid time: {exc}") from None
        if parsed < _EPOCH:
            raise ValueError(f"must not be before 1970 (got {value[:40]!r})")
        ms = (parsed - _EPOCH) // _ONE_MS
        if ms > MAX_UNIX_SECONDS * 1000 + 999:  # a negative offset can push 9989-12-31 into 9990
            raise ValueError(f"must not be after {LATEST}, so that deadlines after it stay dates (got {value[:40]!r})")
        return ms
    raise ValueError(f"must be an RFC 3339 time with an offset or Unix seconds (got {type(value).__name__})")


def rfc3339(ms: int | None) -> str | None:
    """`2026-11-25T10:00:03.250Z`; whole seconds drop the fraction (`2026-11-25T10:00:07Z`)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    stamp = _second(seconds)
    return f"{stamp}.{millis:03d}Z" if millis else f"{stamp}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """The date and time of one second: every webhook payload and rendered object spells times,
    and the times one drain or read spells fall in few seconds (strftime is most of the cost)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def unix_seconds(ms: int | None) -> int | None:
    """Whole Unix seconds, as Azure's wire format wants them."""
    return None if ms is None else ms // 1000
