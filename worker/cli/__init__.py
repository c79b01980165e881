"""The `runstate` command (click): `main` holds the group and the run commands, `webhooks`
the webhook commands, `replay` the embedded replay, `support` what every command shares.

May import: anything in `worker` (it is the outermost face) and `statemachine`.
"""
