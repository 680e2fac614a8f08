"""JSON log lines with the request context, and the daily-rotated log files."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.logs import LOG_CONTEXT, bind_log_context, configure_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    token = LOG_CONTEXT.set(None)
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    LOG_CONTEXT.reset(token)


def test_log_lines_are_json_with_request_context_and_stack_traces(
    tmp_path: Path, restore_root_logger: None
) -> None:
    configure_logging("INFO", log_dir=tmp_path, files_kept=10)
    bind_log_context(request_id="req-42", vehicle_id="wheelchair_001", user_id=None)
    logger = logging.getLogger("tvm.test")
    logger.info("stored %d rows", 3)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("write failed")
    for handler in logging.getLogger().handlers:
        handler.flush()

    first, second = [
        json.loads(line) for line in (tmp_path / "tvm-hub.log").read_text().splitlines()
    ]
    assert first["message"] == "stored 3 rows"
    assert first["level"] == "INFO"
    assert first["request_id"] == "req-42"
    assert first["vehicle_id"] == "wheelchair_001"
    assert "user_id" not in first
    assert first["timestamp"].endswith("Z")
    assert second["level"] == "ERROR"
    assert "RuntimeError: boom" in second["stack_trace"]


def test_log_files_rotate_daily_keeping_ten(tmp_path: Path, restore_root_logger: None) -> None:
    configure_logging("INFO", log_dir=tmp_path, files_kept=10)
    [rotating] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]
    assert rotating.when == "MIDNIGHT"
    assert rotating.utc
    assert rotating.backupCount == 10
