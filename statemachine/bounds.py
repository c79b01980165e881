"""Bounded field types shared by the event models: every refusal names its rule."""

import math
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from statemachine.timefmt import parse_time

MAX_ID = 128
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_JSON_BYTES = 65_536
MAX_JSON_DEPTH = 32
MAX_TOKENS = 10**12
MAX_COST_USD = Decimal(1_000_000)
MAX_TIMEOUT_SECONDS = 10 * 365 * 86_400

KEY_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"


def key_id_problem(value: object) -> str:
    """Why a run or step id was refused: checked by pydantic's own pattern (no Python call per
    event); this names the rule and the offending characters for the message."""
    text = str(value)
    bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "_.:-"))})
    why = f"characters {''.join(bad)!r} are not allowed" if bad else f"length is {len(text)}"
    return f"must be 1–{MAX_ID} characters of A–Z a–z 0–9 _ . : - ({why})"


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has {len(value)} keys; at most {MAX_METADATA_KEYS} are allowed")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(
                f"metadata key {key[:20]!r}… has {len(key)} characters; at most {MAX_METADATA_KEY} are allowed"
            )
        if len(item) > MAX_METADATA_VALUE:
            raise ValueError(
                f"metadata value of {key!r} has {len(item)} characters; at most {MAX_METADATA_VALUE} are allowed"
            )
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively, so hostile input cannot exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        elif isinstance(item, int) and not -(2**63) <= item < 2**64:
            raise ValueError("integers must fit in 64 bits")
    return deepest


def finite_json(value: dict[str, Any]) -> dict[str, Any]:
    """`value` itself, when its numbers are finite JSON numbers and it nests at most MAX_JSON_DEPTH deep."""
    if (depth := _depth(value)) > MAX_JSON_DEPTH:
        raise ValueError(f"nesting depth is {depth}; at most {MAX_JSON_DEPTH} is allowed")
    return value


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    finite_json(value)
    size = len(orjson.dumps(value))
    if size > MAX_JSON_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_JSON_BYTES} are allowed")
    return value


def _seconds(value: float | int | None) -> float | int | None:
    # Checked here, not with allow_inf_nan: pydantic's own check overflows on huge integers.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number of seconds (got {value})")
    if value is not None and abs(value) > MAX_TIMEOUT_SECONDS:
        raise ValueError(f"must be at most {MAX_TIMEOUT_SECONDS} seconds (got {value})")
    return value


KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Metadata = Annotated[dict[str, str], AfterValidator(_metadata)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
CostUsd = Annotated[Decimal, Field(ge=0, le=MAX_COST_USD, allow_inf_nan=False, decimal_places=18)]
Seconds = Annotated[float | int | None, AfterValidator(_seconds)]
Timestamp = Annotated[int, BeforeValidator(parse_time)]
Tags = Annotated[list[Annotated[str, StringConstraints(max_length=128)]], Field(max_length=32)]
