"""`runstate serve`: the HTTP API (FastAPI). `app` assembles one router per resource (`events`,
`runs`, `webhooks`, `metrics`) with `auth` (Bearer tokens → accounts), `errors` (one error
shape), `schemas` (the OpenAPI models) and `ratelimit`.

May import: the composition (`worker.runtime`, `worker.reads`) and everything below it.
Never `worker.cli`.
"""
