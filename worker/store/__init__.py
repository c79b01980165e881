"""Everything that speaks Redis: key names, the Lua scripts and their one loader, the commit's
script arguments packed by name, runs and inboxes, timers, rejected records, the webhook outbox
and subscription records, deletion, durability checks.

May import: `statemachine`, `worker.settings`, `worker.logs`. Nothing else of `worker`.
"""
