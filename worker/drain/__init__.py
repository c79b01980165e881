"""The `runstate worker` process's work: claim ready runs, apply their events through the
state machine (`processor`), commit them (`turns`), sweep the timers (`sweeper`), record
histograms (`metrics`); `jobs` holds the RQ job functions.

May import: `worker.store`, `statemachine`, the leaves. What it needs from above (the
connection, a way to wake idle workers) arrives typed by the Protocols in `parts`.
"""
