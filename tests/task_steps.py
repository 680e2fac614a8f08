"""A trio instrument that counts task steps, for tests of how many turns of trio's scheduler
some work takes (the Router's bursts, the asyncio bridge's)."""

from __future__ import annotations

import trio
import trio.lowlevel


class TaskSteps(trio.abc.Instrument):
    """Counts the steps of every task, or only of tasks whose name ends with ``name_suffix``."""

    def __init__(self, name_suffix: str | None = None) -> None:
        self.steps = 0
        self._name_suffix = name_suffix

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._name_suffix is None or task.name.endswith(self._name_suffix):
            self.steps += 1
