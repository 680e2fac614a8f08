"""A vehicle actor that ends takes its socket down with it: 1001 when it is stopped, 1011
after a crash, so the vehicle reconnects to the restarted actor instead of staying
connected to nothing."""

from __future__ import annotations

import trio
import trio.testing

from actors.sockets.outbound import OutboundLink
from actors.vehicle.messages import AckReceived, Connect, VehicleMessage
from hub.runtime import ActorRef, RestartPolicy, Supervisor
from hub.runtime.testing import open_supervisor
from tests.unit.fakes import MemoryVehicleStore, closed_with, vehicle_actor

VEHICLE = "wheelchair_001"
GUARD = 60.0  # virtual seconds under autojump_clock


async def connected(supervisor: Supervisor) -> tuple[ActorRef[VehicleMessage], OutboundLink]:
    """Start the vehicle's actor and connect a socket to it (welcomed)."""
    store = MemoryVehicleStore()
    ref = await supervisor.start_child("vehicle", VEHICLE, lambda: vehicle_actor(VEHICLE, store))
    link = OutboundLink()
    await ref.ask(lambda reply: Connect(link, reply))
    assert (await link.next_frame())["type"] == "welcome"
    return ref, link


async def test_a_crash_closes_the_vehicle_socket_with_1011_and_the_actor_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_supervisor(RestartPolicy(max_restarts=3)) as supervisor:
            ref, link = await connected(supervisor)

            await ref.tell(AckReceived(ack=object()))  # type: ignore[arg-type]  # a bug's stand-in
            assert await closed_with(link) == (1011, "internal error")

            await trio.sleep(1)  # past the restart backoff
            [child] = supervisor.children()
            assert child.restarts == 1 and child.running
            second = OutboundLink()
            await ref.ask(lambda reply: Connect(second, reply))
            assert (await second.next_frame())["type"] == "welcome"


async def test_a_stopped_actor_closes_the_vehicle_socket_with_1001(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_supervisor() as supervisor:
            _, link = await connected(supervisor)
            assert await supervisor.stop_child("vehicle", VEHICLE)
            assert await closed_with(link) == (1001, "server going away")
            assert supervisor.children() == []
