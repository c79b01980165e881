"""Events in: validate and queue them on their runs' inboxes (`publisher`), and runstate's RQ
pieces (`queue`: the JSON-only job class, the allowlist of job functions by name, the queue
and worker classes that record refused jobs).

May import: `worker.store`, `statemachine`, the leaves. Never `drain` or `webhooks`: the job
functions are named as text and resolved by RQ only after the allowlist check.
"""
