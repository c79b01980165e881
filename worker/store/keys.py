"""Every Redis key runstate uses, in one place.

A run is identified by its account and its run id: two accounts may use one run id for two
runs. Its reference, `RunRef`, is `<account>/<run id>`. Account ids follow the run-id rules
(`statemachine.bounds.KEY_ID_PATTERN`), which allow neither `/` nor braces, so a reference
splits one way only and a hash tag always closes where it should. Keys of one run carry the
hash tag `{<account>/<run id>}`, so a later sharding by run across several primaries keeps a
run's keys together; the reference is also the run's member in the ready set, the timer index,
the runs indexes (all runs, and its account's) and the expiries.
"""

from typing import NewType

PREFIX = "runstate"
RUN_PREFIX = f"{PREFIX}:run:"
SEPARATOR = "/"  # occurs in no account id and no run id

RunRef = NewType("RunRef", str)  # "<account>/<run id>"


def ref(account: str, run_id: str) -> RunRef:
    """The reference of the run `run_id` of `account`."""
    return RunRef(f"{account}{SEPARATOR}{run_id}")


def parts(run: RunRef) -> tuple[str, str]:
    """(account, run id) of a reference."""
    account, _, run_id = run.partition(SEPARATOR)
    return account, run_id


def run(run: RunRef) -> str:
    """Hash {v: version, d: RunState JSON}. No TTL while the run is open; RUNSTATE_RETENTION once finished."""
    return f"{RUN_PREFIX}{{{run}}}"


def steps(run: RunRef) -> str:
    """Hash {step id: Step JSON} of the run's closed steps. Its open steps live in the run's
    document, so a drain reads and writes only those and the closed ones its events name: a run
    with thousands of steps costs an event no more than a short one. Same TTL as the run."""
    return f"{PREFIX}:steps:{{{run}}}"


def step_order(run: RunRef) -> str:
    """The run's step ids in creation order (what reads page through), each ended by a newline (a
    step id holds none): a string each commit that creates steps appends to, smaller than a list.
    Same TTL as the run."""
    return f"{PREFIX}:steporder:{{{run}}}"


def history(run: RunRef) -> str:
    """List of Transition JSON, in order. Same TTL as the run."""
    return f"{PREFIX}:history:{{{run}}}"


def seen(run: RunRef) -> str:
    """Set of the event ids this run has processed (the dedupe). Same TTL as the run."""
    return f"{PREFIX}:seen:{{{run}}}"


TOMBSTONE_PREFIX = f"{PREFIX}:tombstone:"


def tombstone(run: RunRef) -> str:
    """The finished run's status (`deleted` for a deleted run); TTL twice RUNSTATE_RETENTION, so late events
    stay stale after it is gone."""
    return f"{TOMBSTONE_PREFIX}{{{run}}}"


INBOX_PREFIX = f"{PREFIX}:inbox:"


def inbox(run: RunRef) -> str:
    """List of queued events (envelope JSON) not yet applied, in publish order. Emptied as they apply."""
    return f"{INBOX_PREFIX}{{{run}}}"


def held(run: RunRef) -> str:
    """JSON list of events waiting for a `sequence` gap to fill. Deleted when empty."""
    return f"{PREFIX}:held:{{{run}}}"


def step_index(account: str, step_id: str) -> str:
    """The run (its reference, account/run id) holding step `step_id` of `account`, for reads by
    step id alone (Letta's GET /v1/steps/{id}). No TTL while the run is open; expires with the
    finished run; deleted with it. A step id reused within an account names the run that wrote it
    last. The step id is the hash tag (it has no braces), so no account name can make two keys
    collide."""
    before, after = step_index_around(account)
    return f"{before}{step_id}{after}"


def step_index_around(account: str) -> tuple[str, str]:
    """What comes before and after a step id in `account`'s step index keys: the scripts build
    those keys from the step ids they read."""
    return f"{PREFIX}:stepindex:{{", f"}}{account}"


RUN_TIMER = "run:"  # the prefix of a run's member in TIMERS


def run_timer(run: RunRef) -> str:
    """The run's member in TIMERS: due when its inbox needs draining, a held event's wait ends, or a deadline."""
    return f"{RUN_TIMER}{run}"


OWNERS_PREFIX = f"{PREFIX}:owners:"


def owners(run_id: str) -> str:
    """Set of the accounts holding a run of this id, added to whenever an event is published for
    one (through any door), so that an event naming no account finds its run (`intake.publisher`).
    An account leaves it when its run is gone, tombstone included (`lua/prune.lua`). No TTL."""
    return f"{OWNERS_PREFIX}{{{run_id}}}"


# The one timer index: sorted set of members by due time (ms, Redis TIME). No TTL.
TIMERS = f"{PREFIX}:timers"

# Sorted set of runs (RunRef) whose inboxes hold events no worker has claimed yet, scored by when the
# oldest of them was published (ms, Redis TIME). Workers pop the oldest first. No TTL.
READY = f"{PREFIX}:ready"

# Count of events published and not yet taken from their inboxes (the queue depth in events). No TTL.
QUEUED = f"{PREFIX}:queued"

# Set while an RQ wake-up job is queued and not yet started, so publishers enqueue one job for
# many events instead of one per publish. Expires after a few seconds: a lost job costs no more.
WAKE = f"{PREFIX}:wake"

# Subscriptions with webhook deliveries waiting, each scored by its earliest timer (ms, Redis
# TIME; perhaps earlier until a claim looks, or a little later while a delivery process has
# no room for it): a claim walks subscriptions,
# not deliveries, so one subscription's backlog never stands in front of another's. Apart from
# TIMERS, so a stopped delivery process can never crowd runs out of the workers' sweep. No TTL.
WEBHOOK_READY = f"{PREFIX}:webhooks:ready"

# Earlier builds kept every delivery timer as a `webhook:<delivery id>` member of this one set; a claim
# moves what is left of it into the per-subscription sets (worker/store/lua/claim_webhooks.lua).
LEGACY_WEBHOOK_TIMERS = f"{PREFIX}:timers:webhooks"
LEGACY_TIMER_PREFIX = "webhook:"

# Hash of subscription id -> Subscription JSON (secret included). No TTL.
SUBSCRIPTIONS = f"{PREFIX}:webhooks:subscriptions"

# A random token, new with every change to SUBSCRIPTIONS: workers reread them only when it changed. No TTL.
SUBSCRIPTIONS_VERSION = f"{PREFIX}:webhooks:version"

# List of dead-lettered delivery ids, newest last. No TTL: kept until replayed.
DEAD_LETTERS = f"{PREFIX}:webhooks:dead"


def delivery(delivery_id: str) -> str:
    """Delivery JSON (subscription, payload, attempts, state). Delivered ones expire after RUNSTATE_RETENTION."""
    return f"{PREFIX}:webhooks:delivery:{delivery_id}"


def webhook_timers(subscription_id: str) -> str:
    """Sorted set of the subscription's delivery ids, each scored by when its next attempt is due
    (or its claim's lease ends). No TTL: emptied as deliveries finish."""
    return f"{PREFIX}:webhooks:timers:{subscription_id}"


# Counter every commit takes its run's new version from: versions are never reused. No TTL.
VERSIONS = f"{PREFIX}:versions"

# Sorted set of runs (RunRef) by created_at (ms). No TTL: a finished run leaves it when its keys expire.
RUNS = f"{PREFIX}:runs"

ACCOUNT_RUNS_PREFIX = f"{RUNS}:"


def account_runs(account: str) -> str:
    """Sorted set of the account's runs (RunRef) by created_at (ms): RUNS cut by account, so that
    listing one account's runs reads only its own. Added to and taken from with RUNS. No TTL. The
    account is the hash tag (it has no braces)."""
    return f"{ACCOUNT_RUNS_PREFIX}{{{account}}}"


# Sorted set of finished (or deleted) runs (RunRef) by when their keys expire (ms): the sweep removes
# them from RUNS then, so the index is bounded by RUNSTATE_RETENTION like the runs themselves, and
# takes their account out of OWNERS once their tombstone has expired too. No TTL.
EXPIRIES = f"{PREFIX}:expiries"

# Prefix of the API rate limit's moving windows, one list per token hash and limit (the `limits`
# library's keys). Each expires a window after its last request.
RATE_LIMIT = f"{PREFIX}:ratelimit"

# String `/healthz` writes with a 10 s TTL: a Redis that refuses writes fails the check.
HEALTH = f"{PREFIX}:health"

# List of rejected-event records (JSON), oldest first. No TTL: every rejection is kept.
REJECTED = f"{PREFIX}:rejected"

# Hash of outcome counters by event type ("step.completed:applied", "run.started:stale"), plus
# "late_usage", "gaps", "deadlines", "inactivity_timeouts", "event.rejected", "job.poisoned" and
# "webhook:<outcome>". No TTL.
STATS = f"{PREFIX}:stats"

# Hash of histogram buckets the workers add to ("apply_latency:le:0.005", "apply_latency:sum",
# "timer_lag:count", ...): what /metrics reports for every worker. No TTL.
METRICS = f"{PREFIX}:metrics"

# String written to learn whether Redis takes writes again after an outage, and to give a
# publish's WAIT a write on its own connection to wait for. TTL 10 s.
PROBE = f"{PREFIX}:probe"
