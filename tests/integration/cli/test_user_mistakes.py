"""Every user mistake gets one line from the real `runstate` process: what is wrong, naming the
variable or file, and how to fix it; never a traceback. Exit 2 for usage and settings, 1 for
failures. A publish cut off by Redis says how many events were stored and that re-running is safe."""

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from redis import Redis

from tests.support.loopback import free_port
from tests.support.processes import cli_env, runstate
from tests.support.redis_servers import own_redis
from worker.store import keys

SEE = "(runstate --help lists the environment variables)"
NOBODY = free_port()  # nothing listens there
REFUSED = f"Redis is unreachable (ConnectionError: Error 111 connecting to 127.0.0.1:{NOBODY}. Connection refused.)"
MISTAKES = [
    (
        ["stats"],
        {"REDIS_URL": f"redis://127.0.0.1:{NOBODY}/0"},
        1,
        f"runstate: REDIS_URL=redis://127.0.0.1:{NOBODY}/0: {REFUSED}; start Redis or point REDIS_URL at it",
    ),
    (
        ["runs"],
        {"REDIS_URL": f"redis://me:hunter2@127.0.0.1:{NOBODY}/0"},
        1,
        f"runstate: REDIS_URL=redis://me:***@127.0.0.1:{NOBODY}/0: {REFUSED}; start Redis or point REDIS_URL at it",
    ),
    (
        ["stats"],
        {"REDIS_URL": ""},
        2,
        "runstate: REDIS_URL='': REDIS_URL is empty: set it to redis://HOST:PORT/DB or"
        " redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB], or unset it for redis://localhost:6379/0"
        f" {SEE}",
    ),
    (
        ["stats"],
        {"REDIS_URL": "localhost:6379"},
        2,
        "runstate: REDIS_URL='localhost:6379': REDIS_URL scheme 'localhost:6379' is not one of redis, rediss,"
        " unix, redis+sentinel: use redis://HOST:PORT/DB or redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
        f" {SEE}",
    ),
    (
        ["stats"],
        {"RUNSTATE_DEFAULT_RUN_TIMEOUT": "1h"},
        2,
        "runstate: RUNSTATE_DEFAULT_RUN_TIMEOUT='1h': Input should be a valid number, unable to parse string as a"
        f" number {SEE}",
    ),
    (
        ["stats"],
        {"RUNSTATE_LOG_LEVEL": "verbose"},
        2,
        f"runstate: RUNSTATE_LOG_LEVEL='verbose': must be one of debug, info, warning, error {SEE}",
    ),
    (
        ["publish", "/nowhere/events.jsonl"],
        {},
        2,
        "runstate: Invalid value for '[FILES]...': File '/nowhere/events.jsonl' does not exist."
        " (see python -m worker publish --help)",
    ),
    (
        ["serve", "--port", str(NOBODY)],
        {"RUNSTATE_API_TOKENS_FILE": "/nowhere/tokens"},
        2,
        f"runstate: RUNSTATE_API_TOKENS_FILE=/nowhere/tokens: cannot be read: No such file or directory {SEE}",
    ),
    (
        ["serve", "--port", str(NOBODY)],
        {"RUNSTATE_API_TOKENS": "tok_a:acct_a,secret-without-account"},
        2,
        f"runstate: RUNSTATE_API_TOKENS: entry 2 is not token:account {SEE}",
    ),
    (["show", "run"], {}, 2, "runstate: Missing argument 'RUN_ID'. (see python -m worker show run --help)"),
]


@pytest.mark.parametrize(
    ("args", "env", "code", "line"),
    MISTAKES,
    ids=[
        "refused",
        "password",
        "empty-url",
        "no-scheme",
        "timeout",
        "log-level",
        "file",
        "tokens-file",
        "token",
        "arg",
    ],
)
def test_each_mistake_is_one_line_naming_it(
    redis_url: str, args: list[str], env: dict[str, str], code: int, line: str
) -> None:
    extra = {name: value for name, value in env.items() if name != "REDIS_URL"}
    done = runstate(args, env.get("REDIS_URL", redis_url), **extra)
    assert (done.returncode, done.stderr.decode()) == (code, line + "\n")


def test_a_publish_cut_off_by_a_full_redis_says_how_many_were_stored(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    padded = {"type": "run.started", "data": {"state": {"pad": "x" * 500}}}
    events.write_bytes(
        b"".join(orjson.dumps({**padded, "id": f"e{n}", "run_id": f"r{n}"}) + b"\n" for n in range(3_000))
    )
    with own_redis(tmp_path) as server:
        admin = Redis(port=server.port)
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 500_000)  # room for some batches
        cut = runstate(["publish", str(events)], server.url, RUNSTATE_BATCH_SIZE="100")
        stored = int(admin.get(keys.QUEUED) or 0)
        admin.config_set("maxmemory", 0)
        again = runstate(["publish", str(events)], server.url, RUNSTATE_BATCH_SIZE="100")
    error = cut.stderr.decode()
    assert 0 < stored < 3_000
    assert (cut.returncode, error.count("\n"), "Traceback" in error) == (1, 1, False)
    assert error.startswith(f"runstate: REDIS_URL={server.url}: Redis is out of memory (maxmemory) and refuses writes")
    assert f"; {stored} events were stored before it ({events} not finished); publishing the same files again" in error
    assert (again.returncode, again.stderr.decode()) == (0, "published 3000 events; 0 invalid lines\n")


def test_serve_warns_when_no_token_is_set(redis_url: str) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "worker", "serve", "--port", str(free_port())],
        env=cli_env(redis_url, RUNSTATE_LOG_LEVEL="info"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert serve.stderr is not None
    first = json.loads(serve.stderr.readline())  # logged before the server starts
    serve.terminate()
    serve.communicate(timeout=60)
    assert (first["level"], first["event"], first["hint"]) == (
        "warning",
        "serve.no_tokens",
        "set RUNSTATE_API_TOKENS or RUNSTATE_API_TOKENS_FILE: every /v1/ route answers 401",
    )


def test_an_exception_in_a_json_log_line_has_its_type_message_and_traceback() -> None:
    code = (
        "import logging, structlog\n"
        "from worker import logs\n"
        "logs.configure()\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    structlog.get_logger('t').exception('job.crashed')\n"
        "    logging.getLogger('rq').exception('rq crashed')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    entries = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert [e["event"] for e in entries] == ["job.crashed", "rq crashed"]
    for entry in entries:
        (exception,) = entry["exception"]
        assert (exception["exc_type"], exception["exc_value"]) == ("ZeroDivisionError", "division by zero")
        assert (exception["frames"][-1]["filename"], exception["frames"][-1]["lineno"]) == ("<string>", 5)
        assert "exc_info" not in entry
