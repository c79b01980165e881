"""Redis faults told from bugs, from one table: every reply that means Redis cannot take writes
now is a fault the loops ride out, with the line a person is told; an outage is logged once."""

import pytest
import structlog
from redis import exceptions as errors
from redis._parsers.base import BaseParser

from worker.store.outage import FAULTS, Fault, Outage, classify, is_fault, reason


def reply(text: str) -> errors.RedisError:
    """The exception the installed redis-py raises for an error reply `text` (its code first)."""
    error: errors.RedisError = BaseParser.parse_error(text)
    return error


LOADING = "Redis is loading its data"
UNREACHABLE = "Redis is unreachable"
READ_ONLY = "Redis is a read-only replica and refuses writes"
NO_PRIMARY = "Redis has lost its primary"
CLUSTER_DOWN = "Redis Cluster is down"
MOVING = "Redis Cluster is moving keys"
FEW_REPLICAS = "Redis has too few replicas to take writes"
FULL = "Redis is out of memory (maxmemory) and refuses writes"
CANNOT_PERSIST = "Redis cannot persist its data and refuses writes"
BUSY = "Redis is busy running a script"
CREDENTIALS = "Redis refused the credentials: set the user and password in REDIS_URL (redis://USER:PASSWORD@host:port)"
OOM = "OOM command not allowed when used memory > 'maxmemory'."

CASES = [
    (reply("LOADING Redis is loading the dataset in memory"), LOADING),
    (reply("WRONGPASS invalid username-password pair or user is disabled."), CREDENTIALS),
    (reply("NOAUTH Authentication required."), CREDENTIALS),
    (errors.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), UNREACHABLE),
    (errors.TimeoutError("Timeout reading from socket"), UNREACHABLE),
    (reply("READONLY You can't write against a read only replica."), READ_ONLY),
    (reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), NO_PRIMARY),
    (reply("CLUSTERDOWN The cluster is down"), CLUSTER_DOWN),
    (reply("TRYAGAIN Multiple keys request during rehashing of slot"), MOVING),
    (reply("NOREPLICAS Not enough good replicas to write."), FEW_REPLICAS),
    (reply(OOM), FULL),
    # Redis 7 names the script after the reply; Redis 6 wraps the reply in an ERR of its own
    (reply(f"{OOM} script: b0e7bbc2efc136be74cdebcb73a106ad46ea881b, on @user_script:1."), FULL),
    (reply(f"ERR Error running script (call to f_b0e7bbc2ef): @user_script:1: @user_script: 1: -{OOM} "), FULL),
    (
        reply("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."),
        CANNOT_PERSIST,
    ),
    (reply("MISCONF Errors writing to the AOF file: No space left on device"), CANNOT_PERSIST),
    (reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), BUSY),
    # a pipeline's command: redis-py puts which one before the reply
    (
        errors.ResponseError("Command # 1 (SET k v) of pipeline caused error: NOREPLICAS Not enough good replicas"),
        FEW_REPLICAS,
    ),
]
BUGS = [
    reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
    reply("BUSYKEY Target key name already exists."),
    reply("NOSCRIPT No matching script. Please use EVAL."),
    reply("ERR unknown command 'NOPE'"),
    reply("ERR Error running script (call to f_b0e7bbc2ef): @user_script:1: WRONGTYPE Operation against a key"),
    errors.ResponseError("Command # 2 (INCR k) of pipeline caused error: value is not an integer or out of range"),
    ValueError("OOM"),
]


@pytest.mark.parametrize(("error", "told"), CASES, ids=[f"{type(e).__name__}:{e}"[:50] for e, _ in CASES])
def test_a_reply_that_means_redis_cannot_take_writes_is_a_fault_with_its_reason(
    error: errors.RedisError, told: str
) -> None:
    assert (is_fault(error), reason(error)) == (True, told)


@pytest.mark.parametrize("error", BUGS, ids=[f"{type(e).__name__}:{e}"[:50] for e in BUGS])
def test_any_other_error_is_a_bug_with_no_reason(error: Exception) -> None:
    assert (is_fault(error), reason(error)) == (False, None)


def _samples(fault: Fault) -> list[BaseException]:
    """The ways `fault` arrives: its reply as redis-py parses it, and its class raised directly."""
    made: list[BaseException] = [reply(f"{fault.code} what Redis says")] if fault.code else []
    return made + ([fault.kind("what Redis says")] if fault.kind else [])


@pytest.mark.parametrize("fault", FAULTS, ids=[f.code or (f.kind.__name__ if f.kind else "") for f in FAULTS])
def test_both_answers_come_from_the_same_entry_of_the_table(fault: Fault) -> None:
    samples = _samples(fault)
    assert samples
    for error in samples:
        assert (classify(error), is_fault(error), reason(error)) == (fault, True, fault.told), error


def test_the_table_names_each_code_once_and_every_case_above_is_in_it() -> None:
    codes = [fault.code for fault in FAULTS if fault.code]
    assert len(codes) == len(set(codes))
    assert {told for _, told in CASES} == {fault.told for fault in FAULTS}


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_with_capped_waits() -> None:
    outage = Outage("sweeper", base=0.05, cap=2.0)
    with structlog.testing.capture_logs() as logged:
        waits = [outage.failed(errors.ConnectionError("refused")) for _ in range(20)]
        outage.recovered()
        outage.recovered()
    assert [(line["event"], line["loop"]) for line in logged] == [
        ("redis.unavailable", "sweeper"),
        ("redis.available", "sweeper"),
    ]
    assert (logged[0]["reason"], logged[0]["error"]) == ("Redis is unreachable", "ConnectionError: refused")
    assert logged[1]["attempts"] == 20
    assert all(0 < wait <= 2.0 for wait in waits)
    assert max(waits) >= 1.0  # grown to the cap, never past it
    assert len(set(waits)) > 10  # jittered
