"""structlog set-up: one JSON event per line, with service, region and the request id when there is one."""
from __future__ import annotations

import logging
import sys

import structlog

_configured = False


def configure_logging(*, service: str, region: str, json: bool = True, level: str = "INFO") -> None:
    global _configured
    structlog.contextvars.bind_contextvars(service=service, region=region)
    if _configured:
        return
    _configured = True
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
            _scrub_secrets,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def _scrub_secrets(logger, method_name, rendered):
    """Last step: no secret of the loaded config (keys, passwords, DSN passwords) reaches a log line."""
    from shared.config import scrub

    return scrub(rendered) if isinstance(rendered, str) else rendered


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


REQUEST_ID_HEADER = "Meridian-Request-Id"


def current_request_id() -> str | None:
    """The request id bound for this task (HTTP request or bus message), if any."""
    return structlog.contextvars.get_contextvars().get("request_id")
