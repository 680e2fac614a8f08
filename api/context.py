"""The services a request handler reaches, gathered once at start-up by ``api.serve``."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from actors.accounts import AccountService
from actors.alerts.book import AlertBook
from actors.fleet_reads import FleetReads
from actors.health import HealthProbe
from actors.missions import MissionService
from actors.router.sink import RouterSink
from actors.sockets.connection import SocketPolicy
from actors.vehicle.directory import VehicleDirectory
from actors.vehicle.registry import VehicleRegistry
from api.fleet_snapshot import FleetSnapshots
from hub.config import Settings
from hub.runtime import Registry
from hub.security import TokenCodec


@dataclass(slots=True)
class HubServices:
    """Everything the API layer talks to; handlers never open connections themselves."""

    settings: Settings
    codec: TokenCodec
    registry: VehicleRegistry
    accounts: AccountService
    reads: FleetReads
    health: HealthProbe
    actors: Registry
    vehicles: VehicleDirectory
    router: RouterSink
    alerts: AlertBook
    missions: MissionService
    socket_policy: SocketPolicy = field(default_factory=SocketPolicy)
    started_at: float = field(default_factory=trio.current_time)
    accepting: bool = True
    snapshots: FleetSnapshots = field(init=False)  # the sessions' snapshots, shared when alike

    def __post_init__(self) -> None:
        self.snapshots = FleetSnapshots(self.reads, self.router)
