"""structlog set-up: one JSON event per line (or a readable line on a terminal), with service, region
and the request id when there is one."""
from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

import msgspec
import structlog

_configured = False
_json_lines = False  # set by configure_logging: `access` writes its JSON line itself
# Third-party loggers that narrate their routine work at INFO (pgserver prints every pg_ctl command
# line with its output, even at shutdown): only their warnings reach the operator.
QUIET_LOGGERS = ("pgserver", "asyncio", "aiobotocore", "botocore", "nats")


def wants_json(stream: TextIO, forced: bool | None = None) -> bool:
    """JSON unless the stream is a terminal; `forced` (a --json or --pretty flag) decides when given."""
    if forced is not None:
        return forced
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(*, service: str, region: str, json: bool | None = None, level: str = "INFO") -> None:
    """json: True or False forces the format; None chooses by whether stderr is a terminal."""
    global _configured
    structlog.contextvars.bind_contextvars(service=service, region=region)
    if _configured:
        return
    _configured = True
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    as_json = wants_json(sys.stderr, json)
    global _json_lines
    _json_lines = as_json and logging.getLevelName(level) <= logging.INFO
    renderer = structlog.processors.JSONRenderer(serializer=_json_line) if as_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso" if as_json else "%H:%M:%S", utc=as_json),
            structlog.processors.format_exc_info,
            renderer,
            _scrub_secrets,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write per line (print() writes the line and its newline apart: under PYTHONUNBUFFERED two
        # system calls, and another process sharing stderr could write between them).
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


_ENCODER = msgspec.json.Encoder(enc_hook=repr)


def _json_line(event: dict, **_: object) -> str:
    """One event as JSON (msgspec: several times faster than json.dumps). Values JSON has no type for
    are written as their repr, as structlog's default does."""
    return _ENCODER.encode(event).decode()


def access(**fields: object) -> None:
    """The access line of one request. Every request writes one, so in JSON mode it is built here
    directly — the same fields, order and secret scrubbing as structlog's chain gives, at a third of
    its cost (measured: the chain was a fifth of a manifest GET's time) — and the lines of one turn of
    the event loop go out in one write (a write per line was another 15 % of a manifest GET); on a
    terminal (or before logging is configured) it goes through structlog."""
    if not _json_lines:
        get_logger("access").info("request", **fields)
        return
    event = {**fields, "event": "request", **structlog.contextvars.get_contextvars(), "level": "info",
             "timestamp": utc_now_iso()}
    _ACCESS_LINES.add(_scrub_secrets(None, "info", _json_line(event)))


_second_formatted: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """Now in UTC, ISO 8601 with a Z and always six digits of microseconds (structlog's
    TimeStamper(fmt="iso", utc=True) leaves them out in the one microsecond of a million where they are
    zero); the date and time of day are formatted once per second (datetime.now().isoformat() was 4 of
    an access line's 12 µs)."""
    global _second_formatted
    now = time.time()
    second = int(now)
    formatted = _second_formatted  # one read: another thread may replace it at a second's turn
    if formatted[0] != second:
        formatted = _second_formatted = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{formatted[1]}.{int((now - second) * 1_000_000):06d}Z"


class _LinesPerLoopTurn:
    """Lines gathered during one turn of the running event loop and written to stderr together at the
    start of the next turn (so a line is never held longer than the requests of one turn take); without
    a running loop, at once. Written at exit too."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) > 1:
            return  # a write is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self.write)
        except RuntimeError:  # no running loop
            self.write()

    def write(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            for piece in whole_lines_within(lines, PIPE_BUF):
                sys.stderr.write(piece)
                sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed (shutdown) or gone: nothing else to do with a log line
            pass


# The gateway processes of one `meridian up` share one stderr, often a pipe (journald, a container
# runtime, a log shipper): a write to a pipe is never interleaved with another process's only up to
# PIPE_BUF bytes (POSIX; 4096 on Linux). A longer write can be cut by another process's, mid-line.
PIPE_BUF = 4096


def whole_lines_within(lines: list[str], limit: int) -> list[str]:
    """The lines, newline-terminated, joined into pieces of at most `limit` bytes that each end at a
    line's end (a single longer line is a piece of its own)."""
    pieces: list[str] = []
    batch: list[str] = []
    size = 0
    for line in lines:
        length = (len(line) if line.isascii() else len(line.encode())) + 1
        if batch and size + length > limit:
            pieces.append("\n".join(batch) + "\n")
            batch, size = [], 0
        batch.append(line)
        size += length
    if batch:
        pieces.append("\n".join(batch) + "\n")
    return pieces


_ACCESS_LINES = _LinesPerLoopTurn()
atexit.register(_ACCESS_LINES.write)


def _scrub_secrets(logger, method_name, rendered):
    """Last step: no secret of the loaded config (keys, passwords, DSN passwords) reaches a log line."""
    return _scrubber()(rendered) if isinstance(rendered, str) else rendered


@functools.cache
def _scrubber() -> Callable[[str], str]:
    """shared.config's scrub, imported at the first log line rather than at every one (nor at import:
    shared.config is heavy and imports more)."""
    from shared.config import scrub

    return scrub


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


REQUEST_ID_HEADER = "Meridian-Request-Id"


def current_request_id() -> str | None:
    """The request id bound for this task (HTTP request or bus message), if any."""
    return structlog.contextvars.get_contextvars().get("request_id")
