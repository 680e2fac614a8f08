"""Hubs sharing one database share the vehicle registry: a vehicle registered, disabled or
enabled on one hub is known to every other at once (PostgreSQL NOTIFY, no Redis), and a hub
whose listening session was lost reads everything again when it is back.

Two hubs run in this test on one database, as two processes would; both sign tokens with the
same secret, so a token issued by one is good at the other, as behind a load balancer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from storage.testing import execute, fetchval
from storage.vehicle_changes import APPLICATION_NAME
from tests.integration.harness import RunningHub, Vehicle, guarded_hub, location_body, until

VEHICLES = "/api/v1/admin/vehicles"


async def report(hub: RunningHub, vehicle: Vehicle) -> httpx.Response:
    return await hub.post(vehicle, "location", location_body())


async def status_of_report(hub: RunningHub, vehicle: Vehicle) -> int:
    return (await report(hub, vehicle)).status_code


def end_listening_sessions(database_url: str) -> None:
    """Terminate the hubs' listening sessions and wait until they are gone."""
    execute(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    for _ in range(100):
        left = fetchval(
            database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            APPLICATION_NAME,
        )
        if left == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the listening sessions did not end within 5 s")


@asynccontextmanager
async def two_hubs_and_a_vehicle(
    database_url: str,
) -> AsyncIterator[tuple[RunningHub, RunningHub, Vehicle]]:
    """Hubs A and B on one database, and a vehicle registered on A (its token issued by A)
    once B accepts its reports: a registration reaches the other hub."""
    async with (
        guarded_hub(database_url, guard=90) as hub_a,
        guarded_hub(database_url, guard=90) as hub_b,
    ):
        vehicle = await hub_a.register_vehicle("wheelchair_001")
        await until(
            lambda: status_of_report(hub_b, vehicle),
            lambda status: status == 200,
            what="hub B to accept the vehicle registered on hub A",
        )
        yield hub_a, hub_b, vehicle


async def test_registration_disable_and_enable_on_one_hub_reach_the_other(
    database_url: str,
) -> None:
    async with two_hubs_and_a_vehicle(database_url) as (hub_a, hub_b, vehicle):
        disabled = await hub_a.client.delete(
            f"{VEHICLES}/wheelchair_001", headers=hub_a.admin_headers
        )
        assert disabled.status_code == 200, disabled.text
        refused_on_a = await report(hub_a, vehicle)
        assert refused_on_a.status_code != 200
        refused_on_b = await until(
            lambda: report(hub_b, vehicle),
            lambda answer: answer.status_code != 200,
            what="hub B to refuse the vehicle disabled on hub A",
        )
        assert refused_on_b.status_code == refused_on_a.status_code
        assert refused_on_b.json()["error"] == refused_on_a.json()["error"]

        enabled = await hub_a.client.post(
            f"{VEHICLES}/wheelchair_001/enable", headers=hub_a.admin_headers
        )
        assert enabled.status_code == 200, enabled.text
        await until(
            lambda: status_of_report(hub_b, vehicle),
            lambda status: status == 200,
            what="hub B to accept the vehicle enabled again on hub A",
        )


async def test_a_change_made_while_a_hub_was_not_listening_is_read_when_it_is_back(
    database_url: str,
) -> None:
    async with two_hubs_and_a_vehicle(database_url) as (hub_a, hub_b, vehicle):
        await trio.to_thread.run_sync(end_listening_sessions, database_url)
        disabled = await hub_a.client.delete(
            f"{VEHICLES}/wheelchair_001", headers=hub_a.admin_headers
        )
        assert disabled.status_code == 200, disabled.text  # nobody hears this one

        await until(
            lambda: status_of_report(hub_b, vehicle),
            lambda status: status != 200,
            what="hub B, listening again, to refuse the vehicle disabled meanwhile",
            seconds=20.0,
        )
