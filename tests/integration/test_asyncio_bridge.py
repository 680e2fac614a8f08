"""The asyncio bridge runs the callbacks that are ready together in one trio task step.

trio-asyncio on its own runs one asyncio callback per step of its loop task, and every step
waits for a turn of trio's scheduler: a database round trip took 24 steps, so on a busy hub
each call waited 24 scheduler turns. Counted here with a trio instrument on a real PostgreSQL.
"""

from __future__ import annotations

import trio
import trio.lowlevel

from storage.database import open_asyncio_bridge, open_database
from tests.task_steps import TaskSteps

CALLS = 50
BRIDGE_TASK = "_main_loop"
"""How trio-asyncio's loop task (the one running asyncio callbacks) is named."""


async def test_a_database_call_takes_few_steps_of_the_bridge(database_url: str) -> None:
    counter = TaskSteps(BRIDGE_TASK)
    with trio.fail_after(30):
        async with (
            open_asyncio_bridge(),
            open_database(database_url, min_size=1, max_size=2) as database,
        ):
            assert await database.fetchval("SELECT 1") == 1  # warm: statement cache, pool
            trio.lowlevel.add_instrument(counter)
            try:
                for number in range(CALLS):
                    assert await database.fetchval("SELECT $1::int", number) == number
            finally:
                trio.lowlevel.remove_instrument(counter)
    # Every call needs the loop task at least once (so the count is of the right task): 3.0
    # steps per call with the bursts, 24.1 with trio-asyncio running one callback per step.
    assert CALLS <= counter.steps <= 6 * CALLS, counter.steps / CALLS
