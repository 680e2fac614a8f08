"""A database call keeps nothing of its caller alive once it has answered.

asyncpg arms an asyncio timer for each statement and pool acquire; trio-asyncio keeps even a
cancelled timer, with the context it was made in, until the timer's deadline. Made in the
caller's context, every call would keep the caller's context variables (a request and all it
holds, for a hub) alive for tens of seconds after the answer.
"""

from __future__ import annotations

import contextvars
import gc
import weakref

import trio

from storage.database import open_asyncio_bridge, open_database

HELD: contextvars.ContextVar[object] = contextvars.ContextVar("held")


class Payload:
    """Stands in for what a request task holds in its context."""


async def test_a_call_does_not_keep_its_callers_context_alive(database_url: str) -> None:
    with trio.fail_after(30):
        async with (
            open_asyncio_bridge(),
            open_database(database_url, min_size=1, max_size=2) as database,
        ):
            gone: list[weakref.ref[Payload]] = []

            async def caller() -> None:
                payload = Payload()
                gone.append(weakref.ref(payload))
                HELD.set(payload)
                assert await database.fetchval("SELECT 1") == 1
                await database.execute("SELECT pg_sleep(0)")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller)
            gc.collect()
            assert gone[0]() is None, gc.get_referrers(gone[0]())
