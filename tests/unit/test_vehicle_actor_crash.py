"""A vehicle actor that crashes takes its socket down with it, so the vehicle reconnects to
the restarted actor instead of staying connected to nothing."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.events import RecordingSink
from actors.sockets.outbound import LinkClosedError, OutboundLink
from actors.vehicle.actor import VehicleActor
from actors.vehicle.messages import AckReceived, Connect
from hub.runtime import RestartPolicy
from hub.runtime.testing import open_supervisor


class EmptyDatabase:
    """No queued commands to restore, and every write succeeds."""

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return []

    async def execute(self, sql: str, *args: Any) -> str:
        return "OK"


def _actor() -> VehicleActor:
    return VehicleActor(
        "wheelchair_001",
        database=EmptyDatabase(),  # type: ignore[arg-type]
        telemetry=None,  # type: ignore[arg-type]
        sink=RecordingSink(),
    )


async def test_a_crash_closes_the_vehicle_socket_with_1011_and_the_actor_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with open_supervisor(RestartPolicy(max_restarts=3)) as supervisor:
            ref = await supervisor.start_child("vehicle", "wheelchair_001", _actor)
            link = OutboundLink()
            await ref.ask(lambda reply: Connect(link, reply))
            assert (await link.next_frame())["type"] == "welcome"

            await ref.tell(AckReceived(ack=object()))  # type: ignore[arg-type]  # a bug's stand-in
            with pytest.raises(LinkClosedError) as closed:
                await link.next_frame()
            assert (closed.value.code, closed.value.reason) == (1011, "internal error")

            await trio.sleep(1)  # past the restart backoff
            [child] = supervisor.children()
            assert child.restarts == 1 and child.running
            second = OutboundLink()
            await ref.ask(lambda reply: Connect(second, reply))
            assert (await second.next_frame())["type"] == "welcome"
