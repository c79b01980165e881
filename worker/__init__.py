"""runstate's I/O: everything that speaks Redis, RQ, HTTP or a terminal (the domain is `statemachine`).

The subsystems, each a subpackage, and the one direction they depend in (docs/architecture.md;
tests/unit/worker/test_layers.py enforces it):

    cli → api → runtime, processes, reads → drain, webhooks, intake → store → statemachine

The top level only composes: `settings` (one frozen model, read once), `runtime` (the Redis
connection and the objects each process needs), `processes` (the `runstate worker` process),
`reads` (what every face prints), `logs` and `entry`. `settings` and `logs` are leaves anyone
may import.
"""
