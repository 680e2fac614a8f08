"""What any process changes, heard by every hub: registrations, disables and enables, and
commands queued for a vehicle.

Migration 0004 has PostgreSQL ``NOTIFY tvm_vehicles, '<vehicle_id>'`` whenever a row of
``vehicles`` is inserted, deleted or changes ``enabled``; migration 0005 ``NOTIFY
tvm_commands, '<vehicle_id>'`` whenever a command row is inserted as ``queued``. A
notification is sent at commit, to every session listening on that database.
:func:`follow_notifications` holds one such session for a hub: the admin API of another hub,
``tvm-hub vehicle add`` and a manual ``UPDATE`` all reach every hub's registry at once, and a
command queued on one hub reaches the hub holding the vehicle's socket, with no Redis and no
polling.

Notifications sent while the listening session is away are not queued by PostgreSQL, so each
time the session (re)connects the caller is told to read everything again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import trio
import trio_asyncio

from storage.database import StorageError, translate_error

logger = logging.getLogger(__name__)

VEHICLE_CHANNEL = "tvm_vehicles"
"""The registry's notification channel; each payload is one vehicle id."""

COMMAND_CHANNEL = "tvm_commands"
"""Commands queued; each payload is the vehicle's id."""

APPLICATION_NAME = "tvm-hub vehicle changes"
"""How the registry's listening session shows in ``pg_stat_activity``."""

COMMANDS_APPLICATION_NAME = "tvm-hub queued commands"

RECONNECT_DELAY = 1.0
"""Seconds between attempts to open the listening session while the database is away."""

CONNECT_TIMEOUT = 5.0
KEEPALIVE_INTERVAL = 5.0
"""Quiet seconds after which the listening session is checked with ``SELECT 1``; one that
does not answer is replaced, since a session gone silent would hide every later change."""

BACKLOG = 10_000
"""Changes heard but not yet applied; more than this at once means "read everything"."""


async def follow_vehicle_changes(
    dsn: str,
    *,
    changed: Callable[[str], Awaitable[None]],
    resync: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`follow_notifications` of the registry's channel."""
    await follow_notifications(
        dsn,
        VEHICLE_CHANNEL,
        APPLICATION_NAME,
        changed=changed,
        resync=resync,
        task_status=task_status,
    )


async def follow_notifications(
    dsn: str,
    channel: str,
    application_name: str,
    *,
    changed: Callable[[str], Awaitable[None]],
    resync: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Until cancelled: await ``changed(vehicle_id)`` for each notification on ``channel``,
    one at a time in the order committed, and ``resync()`` after every (re)connect and
    whenever notifications were missed.

    Reports started once the first session listens (or has failed to open: the database may
    be away at start; attempts go on every :data:`RECONNECT_DELAY`). Errors of ``changed``
    and ``resync`` from the storage family are logged and answered by a resync on the next
    session; other exceptions propagate. Cancelling closes the session.
    """
    started = False

    def listening() -> None:
        nonlocal started
        if not started:
            started = True
            task_status.started()

    while True:
        try:
            await _listen_once(dsn, channel, application_name, changed, resync, listening)
        except StorageError as exc:
            logger.warning("%s could not be applied: %s", channel, exc)
        except trio.TooSlowError:
            logger.warning("%s listener got no answer; reconnecting", channel)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            logger.warning("%s listener lost the database: %s", channel, translate_error(exc))
        listening()  # the first attempt failed: start anyway, and keep trying
        await trio.sleep(RECONNECT_DELAY)


async def _listen_once(
    dsn: str,
    channel: str,
    application_name: str,
    changed: Callable[[str], Awaitable[None]],
    resync: Callable[[], Awaitable[None]],
    listening: Callable[[], None],
) -> None:
    heard_send, heard = trio.open_memory_channel[str | None](BACKLOG)

    def on_notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            heard_send.send_nowait(payload)
        except trio.WouldBlock:
            logger.warning("%s arrive faster than they are applied; reading all", channel)
            _drain(heard)
            heard_send.send_nowait(None)  # None: read everything again

    connection: asyncpg.Connection = await trio_asyncio.aio_as_trio(asyncpg.connect)(
        dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": application_name}
    )
    try:
        await trio_asyncio.aio_as_trio(connection.add_listener)(channel, on_notify)
        listening()
        await resync()  # whatever changed before this session listened
        while True:
            with trio.move_on_after(KEEPALIVE_INTERVAL) as quiet:
                vehicle_id = await heard.receive()
            if quiet.cancelled_caught:
                with trio.fail_after(CONNECT_TIMEOUT):  # TooSlowError: replace the session
                    await trio_asyncio.aio_as_trio(connection.fetchval)("SELECT 1")
            elif vehicle_id is None:
                await resync()
            else:
                await changed(vehicle_id)
    finally:
        connection.terminate()


def _drain(channel: trio.MemoryReceiveChannel[str | None]) -> None:
    while True:
        try:
            channel.receive_nowait()
        except trio.WouldBlock:
            return
