"""Logging is configured once, at the CLI edge, before RQ starts."""

import logging
import sys

import structlog


def configure(level: str = "info") -> None:
    """Readable lines on a terminal, JSON everywhere else; stdlib loggers (RQ's) go the same way."""
    console = sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    # JSON lines carry an exception as {"exc_type", "exc_value", "frames"}, not `"exc_info": true`;
    # the console renderer prints the traceback itself.
    exceptions: list[structlog.types.Processor] = [] if console else [structlog.processors.dict_tracebacks]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # filter_by_level first: an event below the level costs a check, not the whole chain
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
