"""Child processes that never outlive the hub process that started them.

``serve --workers N`` starts worker processes and an embedded Redis. Each is started with
:func:`child_process_options`, so that:

- it runs in a session of its own: Ctrl-C in a terminal (SIGINT to the foreground process
  group) reaches only the parent, which stops the children in order (workers first, then
  Redis) instead of every process at once;
- on Linux the kernel sends it SIGTERM the moment its parent dies, even when the parent
  was killed with SIGKILL and could not clean up (``prctl(PR_SET_PDEATHSIG)``). Elsewhere
  only an orderly exit of the parent stops the children.

The parent must start its children from its main thread: the kernel ties the "parent
died" signal to the thread that forked the child, not to the process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def child_process_options(death_signal: int = signal.SIGTERM) -> dict[str, Any]:
    """Keyword arguments for :class:`subprocess.Popen`: a new session, and ``death_signal``
    when the parent dies (Linux). Does not block."""
    options: dict[str, Any] = {"start_new_session": True}
    prctl = _prctl()
    if prctl is not None:
        options["preexec_fn"] = _die_with(prctl, os.getpid(), death_signal)
    return options


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up in the parent (the child between fork and exec must not
    load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function: Callable[..., int] | None = getattr(libc, "prctl", None)
    return function


def _die_with(prctl: Callable[..., int], parent: int, death_signal: int) -> Callable[[], None]:
    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: go now
            os._exit(1)

    return in_child
