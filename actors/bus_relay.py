"""What a hub does with the bus between hubs: relay its messages to the Router and the vehicle
directory, and run the calls other hubs make (``storage.redis_bus`` carries them).

Each ``on_`` method hands the message on without blocking (the bus's receiving task calls
them in the order Redis delivered); :meth:`BusRelay.handle_call` runs a call as the request
would run on this hub.
"""

from __future__ import annotations

from typing import Any

import trio

from actors.router.sink import RouterSink
from actors.vehicle.directory import VehicleDirectory
from storage.redis_bus import RedisBus


class BusRelay:
    """The bus's listener on one hub (``storage.redis_bus.BusListener``)."""

    def __init__(self, router: RouterSink, vehicles: VehicleDirectory) -> None:
        self._router = router
        self._vehicles = vehicles

    def on_event(self, vehicle_id: str, seq: int, type: str, text: str, *, alert: bool) -> None:
        """To the Router, which keeps it for replay and fans it out."""
        self._router.relayed_event(vehicle_id, seq, type, text, alert=alert)

    def on_status(self, vehicle_id: str, sender_session: str | None, text: str) -> None:
        """To the Router: the sender session, if it is on this hub, and the watchers."""
        self._router.relayed_status(vehicle_id, sender_session, text)

    def on_alert(self, text: str) -> None:
        """To the Router: every staff session on this hub."""
        self._router.relayed_alert(text)

    def on_claim(self, vehicle_id: str, hub_id: str, link_id: str) -> None:
        """A hub took the vehicle's socket: if it is another one, ours is the older socket."""
        del link_id
        self._vehicles.connected_elsewhere(vehicle_id, hub_id)

    def on_bus_state(self, up: bool) -> None:
        """To the Router, which numbers on this hub while the bus is away."""
        self._router.bus_state(up)

    async def handle_call(self, name: str, body: str) -> str:
        """A command for a vehicle whose socket this hub holds."""
        return await self._vehicles.handle_call(name, body)


class BusService:
    """The bus's connection as a supervised service (``hub.runtime.ServiceActor``)."""

    def __init__(self, bus: RedisBus, relay: BusRelay) -> None:
        self.bus = bus
        self._relay = relay

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected to Redis until cancelled (reconnecting while it is away)."""
        await self.bus.run(self._relay, task_status=task_status)

    def describe(self) -> dict[str, Any]:
        """The bus's counts, for /debug/actors."""
        return self.bus.describe()
