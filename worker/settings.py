"""One frozen settings model, read from the environment once at the edge and passed down."""

from pydantic import Field
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
  RUNSTATE_BATCH_SIZE               events per queued job (default 500)
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
    queue_name: str = "runstate"
    log_level: str | None = None  # None: info for workers, warning for one-shot commands

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    def policy(self) -> Policy:
        return Policy(
            default_account=self.default_account,
            default_run_timeout=self.default_run_timeout or None,
            default_waiting_timeout=self.default_waiting_timeout or None,
            default_step_timeout=self.default_step_timeout or None,
        )
