"""The services a request handler reaches, gathered once at start-up by ``hub.serve``."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from actors.accounts import AccountService
from actors.alerts import AlertService
from actors.battery_health import BatteryHealthService
from actors.fleet_reads import FleetReads
from actors.health import HealthProbe
from actors.missions import MissionService
from actors.rate_limit import RateLimiter
from actors.router import RouterSink
from actors.socket_session import SocketPolicy
from actors.telemetry import TelemetryService
from actors.vehicle_registry import VehicleRegistry
from actors.vehicles import VehicleDirectory
from hub.config import Settings
from hub.runtime import Registry
from hub.security import TokenCodec


@dataclass(slots=True)
class HubServices:
    """Everything the API layer talks to; handlers never open connections themselves."""

    settings: Settings
    codec: TokenCodec
    limiter: RateLimiter
    registry: VehicleRegistry
    telemetry: TelemetryService
    accounts: AccountService
    reads: FleetReads
    health: HealthProbe
    actors: Registry
    vehicles: VehicleDirectory
    router: RouterSink
    alerts: AlertService
    battery_health: BatteryHealthService
    missions: MissionService
    socket_policy: SocketPolicy = field(default_factory=SocketPolicy)
    started_at: float = field(default_factory=trio.current_time)
    accepting: bool = True
