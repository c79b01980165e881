"""One frozen settings model, read from the environment once at the edge and passed down."""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from statemachine.policy import Policy

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

# Named in every command's --help, so a user can see what the command reads.
ENVIRONMENT_HELP = """\b
Environment:
  REDIS_URL                         Redis server (default redis://localhost:6379/0)
  RUNSTATE_DEFAULT_ACCOUNT          account of events that name none (default: default)
  RUNSTATE_DEFAULT_RUN_TIMEOUT      seconds a run may last when its start names none (3600; 0: none)
  RUNSTATE_DEFAULT_WAITING_TIMEOUT  seconds a run may wait for input (default: none)
  RUNSTATE_DEFAULT_STEP_TIMEOUT     seconds a step may stay in progress (default: none)
  RUNSTATE_REORDER_WINDOW           seconds an event ahead of a sequence gap waits (default 30)
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
  PORT                              serve: the port when --port is not given (8000)
  RUNSTATE_BATCH_SIZE               events one publish script writes (default 500)
  RUNSTATE_LOG_LEVEL                debug, info, warning or error (default: info for workers)"""


class Settings(BaseSettings):
    """Everything runstate reads from the environment (see ENVIRONMENT_HELP)."""

    model_config = SettingsConfigDict(env_prefix="RUNSTATE_", frozen=True, extra="ignore")

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    default_account: str = Field(default="default", min_length=1, max_length=128)
    default_run_timeout: float = 3600
    default_waiting_timeout: float | None = None
    default_step_timeout: float | None = None
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
    queue_name: str = "runstate"
    log_level: str | None = None

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"must be seconds separated by commas (got {value!r})") from None
        if any(not 0 <= d <= 30 * 86_400 for d in delays):
            raise ValueError("each delay must be between 0 and 30 days")
        return value  # None: info for workers, warning for one-shot commands

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    def api_token_accounts(self) -> dict[str, str]:
        """Bearer token -> account, from RUNSTATE_API_TOKENS and RUNSTATE_API_TOKENS_FILE."""
        entries = (self.api_tokens or "").split(",")
        if self.api_tokens_file is not None:
            entries += self.api_tokens_file.read_text(encoding="utf-8").splitlines()
        pairs = (e.split("#", 1)[0].strip().rsplit(":", 1) for e in entries)
        return {token.strip(): acct.strip() for token, acct in (p for p in pairs if len(p) == 2) if token and acct}

    def retry_schedule(self) -> list[float]:
        """Read at send time, so a changed schedule applies to deliveries already queued."""
        return [float(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]

    def policy(self) -> Policy:
        return Policy(
            default_account=self.default_account,
            default_run_timeout=self.default_run_timeout or None,
            default_waiting_timeout=self.default_waiting_timeout or None,
            default_step_timeout=self.default_step_timeout or None,
        )
