"""One frozen settings model, read from the environment once at the edge and passed down."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from statemachine.bounds import KEY_ID_PATTERN, key_id_problem
from statemachine.policy import Policy

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SENTINEL_SCHEME = "redis+sentinel"
URL_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
URL_FORMS = "redis://HOST:PORT/DB or redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
LOG_LEVELS = ("debug", "info", "warning", "error")


class BadSetting(ValueError):
    """Raised when an environment variable's value cannot be used; the message names the
    variable and what is wrong, never a secret it holds."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


# Named in every command's --help, so a user can see what the command reads.
ENVIRONMENT_HELP = """\b
Environment:
  REDIS_URL                         Redis server (default redis://localhost:6379/0), or
                                    redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]
  RUNSTATE_REPLICA_ACKS             replicas that must confirm a publish before it returns (default 0)
  RUNSTATE_REPLICA_ACK_TIMEOUT      seconds a publish waits for them (default 1)
  RUNSTATE_DEFAULT_ACCOUNT          account of events naming none whose run id none holds (default: default)
  RUNSTATE_DEFAULT_RUN_TIMEOUT      seconds a run may last when its start names none (3600; 0: none)
  RUNSTATE_DEFAULT_WAITING_TIMEOUT  seconds a run may wait for input (default: none)
  RUNSTATE_DEFAULT_STEP_TIMEOUT     seconds a step may stay in progress (default: none)
  RUNSTATE_DEFAULT_INACTIVITY_TIMEOUT  seconds a running run may go without an event (default: none)
  RUNSTATE_REORDER_WINDOW           seconds an event ahead of a sequence gap waits (default 30)
  RUNSTATE_CLOCK_SKEW               seconds an occurred_at may be ahead of Redis time before it is clamped (5)
  RUNSTATE_RETENTION                seconds a finished run is kept (default 604800)
  RUNSTATE_RECOVER_AFTER            seconds before a sweep drains queued events no job drained (default 10)
  RUNSTATE_WEBHOOK_RETRY_SCHEDULE   retry delays in seconds after the first attempt (5,300,1800,7200,18000,36000,36000)
  RUNSTATE_WEBHOOK_DISABLE_AFTER    seconds of failure before a subscription is disabled (432000)
  RUNSTATE_WEBHOOK_ALLOW_PRIVATE    1/true/yes: allow loopback and private webhook targets (default off)
  RUNSTATE_WEBHOOK_TIMEOUT          seconds one delivery attempt may take (15)
  RUNSTATE_WEBHOOK_CONCURRENCY      deliveries in flight at once per delivery process (100)
  RUNSTATE_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION  of those, at most this many to one subscription (10)
  RUNSTATE_API_TOKENS               serve: token:account,… (Bearer tokens and their accounts)
  RUNSTATE_API_TOKENS_FILE          serve: a file of token:account lines
  RUNSTATE_API_RATE_LIMIT           serve: requests per second per token (default: no limit)
  RUNSTATE_API_READ_TIMEOUT         serve: seconds a request's head, then its body, may take to arrive (30)
  PORT                              serve: the port when --port is not given (8000)
  RUNSTATE_PRICES                   off: leave costs a producer did not report unpriced (default on)
  RUNSTATE_SSL_CERTFILE             serve: PEM certificate for https (with RUNSTATE_SSL_KEYFILE)
  RUNSTATE_SSL_KEYFILE              serve: the certificate's PEM private key
  RUNSTATE_BATCH_SIZE               events one publish script writes (default 500)
  RUNSTATE_LOG_LEVEL                debug, info, warning or error (default: info for workers)"""


@dataclass(frozen=True)
class SentinelUrl:
    """A `redis+sentinel://` REDIS_URL: the sentinels to ask, the service they watch, and what to
    use on the primary they name (the userinfo is the primary's, as in `redis://`)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """`redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`."""
    rest = url.removeprefix(f"{SENTINEL_SCHEME}://")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(part) for part in hosts.split(","))
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise ValueError(f"names no service: use {URL_FORMS}")
    if db and not db.isdigit():
        raise ValueError(f"database {db!r} is not a number: use {URL_FORMS}")
    return SentinelUrl(sentinels, unquote(service), int(db or 0), unquote(username) or None, unquote(password) or None)


def _host_port(part: str) -> tuple[str, int]:
    host, _, port = part.strip().rpartition(":")
    host = host.strip("[]")  # an IPv6 address is written in brackets
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel {part.strip()!r} is not HOST:PORT: use {URL_FORMS}")
    return host, int(port)


class Settings(BaseSettings):
    """Everything runstate reads from the environment (see ENVIRONMENT_HELP)."""

    model_config = SettingsConfigDict(env_prefix="RUNSTATE_", frozen=True, extra="ignore")

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    default_account: str = Field(default="default", pattern=KEY_ID_PATTERN)  # an account id: run-id rules
    default_run_timeout: float = 3600
    default_waiting_timeout: float | None = None
    default_step_timeout: float | None = None
    clock_skew: float = Field(default=5.0, ge=0, le=3600)  # seconds an occurred_at may be ahead of Redis time
    default_inactivity_timeout: float | None = None
    reorder_window: float = Field(default=30, ge=0)
    retention: int = Field(default=7 * 86_400, ge=1)
    recover_after: float = Field(default=10, gt=0, le=50)  # seconds before a sweep drains a run no job drained
    batch_size: int = Field(default=500, ge=1, le=5_000)
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    webhook_disable_after: float = Field(default=5 * 86_400, gt=0)
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(default=15, gt=0, le=300)
    webhook_concurrency: int = Field(default=100, ge=1, le=10_000)
    webhook_concurrency_per_subscription: int = Field(default=10, ge=1, le=10_000)
    api_tokens: str | None = Field(default=None, repr=False)  # "token:account,token:account"
    api_tokens_file: Path | None = None  # one "token:account" a line, "#" comments
    api_rate_limit: int | None = Field(default=None, ge=1)  # requests per second per token; None: no limit
    prices: bool = True  # price usage reported without a cost from genai-prices' table
    api_read_timeout: float = Field(default=30, gt=0, le=3600)  # seconds a request's head, then its body, may take
    queue_name: str = "runstate"
    log_level: str | None = None
    replica_acks: int = Field(default=0, ge=0, le=16)  # replicas that must confirm a publish (Redis WAIT)
    replica_ack_timeout: float = Field(default=1.0, gt=0, le=60)  # seconds a publish waits for them

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """Unset means localhost; empty is a mistake (a `REDIS_URL=` left in a file), never localhost."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError(f"REDIS_URL is empty: set it to {URL_FORMS}, or unset it for {DEFAULT_REDIS_URL}")
        scheme = value.partition("://")[0]
        if scheme not in URL_SCHEMES:
            raise ValueError(f"REDIS_URL scheme {scheme!r} is not one of {', '.join(URL_SCHEMES)}: use {URL_FORMS}")
        if scheme == SENTINEL_SCHEME:
            parse_sentinel_url(value)
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"must be seconds separated by commas (got {value!r})") from None
        if any(not 0 <= d <= 30 * 86_400 for d in delays):
            raise ValueError("each delay must be between 0 and 30 days")
        return value

    @field_validator("redis_url")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():  # an empty REDIS_URL must not mean localhost
            raise ValueError(f"is empty; unset it for {DEFAULT_REDIS_URL}, or name your server")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:  # None: info for workers, warning for one-shot commands
        if value is not None and value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    def sentinel(self) -> SentinelUrl | None:
        """The sentinels to ask for the primary, when REDIS_URL is a `redis+sentinel://` URL."""
        url = self.effective_redis_url
        return parse_sentinel_url(url) if url.startswith(f"{SENTINEL_SCHEME}://") else None

    def api_token_accounts(self) -> dict[str, str]:
        """Bearer token -> account, from RUNSTATE_API_TOKENS and RUNSTATE_API_TOKENS_FILE; raises
        BadSetting naming the entry (never its token) that is not `token:account`."""
        found = _token_entries("RUNSTATE_API_TOKENS", "entry", (self.api_tokens or "").split(","))
        if self.api_tokens_file is not None:
            variable = f"RUNSTATE_API_TOKENS_FILE={self.api_tokens_file}"
            try:
                lines = self.api_tokens_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise BadSetting(variable, f"cannot be read: {exc.strerror or exc}") from None
            found |= _token_entries(variable, "line", lines)
        return found

    def retry_schedule(self) -> list[float]:
        """Read at send time, so a changed schedule applies to deliveries already queued."""
        return [float(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]

    def policy(self) -> Policy:
        return Policy(
            default_account=self.default_account,
            default_run_timeout=self.default_run_timeout or None,
            default_waiting_timeout=self.default_waiting_timeout or None,
            default_step_timeout=self.default_step_timeout or None,
            clock_skew_ms=int(self.clock_skew * 1000),
            default_inactivity_timeout=self.default_inactivity_timeout or None,
        )


def _token_entries(variable: str, unit: str, entries: list[str]) -> dict[str, str]:
    """`token:account` entries; blank ones and `#` comments are skipped."""
    found = {}
    for number, entry in enumerate(entries, start=1):
        text = entry.split("#", 1)[0].strip()
        if not text:
            continue
        token, _, account = (part.strip() for part in text.rpartition(":"))
        if not token or not account:
            raise BadSetting(variable, f"{unit} {number} is not token:account")
        if not re.fullmatch(KEY_ID_PATTERN, account):  # an account id is part of its runs' keys (worker/store/keys.py)
            raise BadSetting(variable, f"{unit} {number}: account {account!r} {key_id_problem(account)}")
        found[token] = account
    return found
