"""A no-op job: RQ's own ceiling, one job per event."""


def noop(_event: object) -> None:
    return None
