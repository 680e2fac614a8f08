"""The end of a server's log file, for the error that says why it did not start."""

from __future__ import annotations

from pathlib import Path

LOG_TAIL_LINES = 20


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log_file`` (or why it cannot be read). Reads the file."""
    try:
        text = log_file.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:])
