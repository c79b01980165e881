"""Webhooks out: the sender process (`sender`, `runstate webhooks deliver`), the SSRF guard
(`ssrf`) and the check of a new subscription (`subscribe`). The outbox and subscription
records themselves live in `worker.store`, written by the same commit as the transition.

May import: `worker.store`, `statemachine`, the leaves. What it needs from above is only
its settings (the sender opens its own asyncio connection).
"""
