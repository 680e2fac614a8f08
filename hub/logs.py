"""Structured JSON logs: one object per line on stdout and, when ``TVM_LOG_DIR`` is set, in a
file rotated at midnight UTC with the last N files kept (TVM-ERR-002, TVM-OBS-002).

Each line has timestamp, level, logger, message, and — when known — request_id,
vehicle_id and user_id, taken from :data:`LOG_CONTEXT`, which the API sets per request
(trio tasks copy context variables, so everything a request does logs with its id).
Errors carry their stack trace. Under ``serve --workers N`` every line of a worker also
carries ``worker`` (0 to N - 1), and each worker writes its own file
(``tvm-hub-worker-<n>.log``): the processes share stdout, but never rotate one file.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.clock import format_timestamp

_EXTRA_FIELDS = ("request_id", "vehicle_id", "user_id", "status", "error_code", "route")

LOG_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("tvm_log_context", default=None)
"""Fields added to every log line of the current task (request_id, vehicle_id, user_id)."""


def bind_log_context(**fields: str | None) -> None:
    """Add fields to the current task's log context (None values are skipped)."""
    current = dict(LOG_CONTEXT.get() or {})
    current.update({key: value for key, value in fields.items() if value is not None})
    LOG_CONTEXT.set(current)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Log with these fields (None values are skipped) for the body of the ``with``, then
    restore the task's context as it was. Actors wrap each message they handle in one, so
    what they log carries the request that caused it, not one that came before."""
    current = {**(LOG_CONTEXT.get() or {})}
    current.update({key: value for key, value in fields.items() if value is not None})
    token = LOG_CONTEXT.set(current)
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)


def reset_log_context() -> None:
    """Forget the current task's log context (an actor task, which outlives the request that
    happened to start it)."""
    LOG_CONTEXT.set(None)


def current_request_id() -> str | None:
    """The request id of the current task's log context, if any."""
    return (LOG_CONTEXT.get() or {}).get("request_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; errors carry their stack trace. ``worker`` (when
    given) is written into every line."""

    def __init__(self, *, worker: int | None = None) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": format_timestamp(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._worker is not None:
            entry["worker"] = self._worker
        context = LOG_CONTEXT.get() or {}
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    level: str = "INFO",
    *,
    log_dir: Path | None = None,
    files_kept: int = 10,
    worker: int | None = None,
) -> None:
    """Send every logger's records to stdout (and the log dir) as JSON lines; ``worker`` is
    the worker number under ``serve --workers N`` (None for the hub's only or parent process)."""
    formatter = JsonFormatter(worker=worker)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_name = "tvm-hub.log" if worker is None else f"tvm-hub-worker-{worker}.log"
        handlers.append(
            logging.handlers.TimedRotatingFileHandler(
                log_dir / file_name,
                when="midnight",
                utc=True,
                backupCount=files_kept,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
