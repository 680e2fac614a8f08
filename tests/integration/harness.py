"""An in-process hub on a real socket (port 0) over a real PostgreSQL, plus client helpers.

``running_hub`` starts :func:`api.serve.serve_hub` in the test's trio run and stops it
gracefully at the end; requests go over TCP with httpx, exactly as a vehicle's would.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import trio

from api.serve import serve_hub
from hub.clock import format_timestamp, utc_now
from hub.config import Settings
from hub.contract.commands import DISPATCH_EXAMPLE

JWT_SECRET = "test-secret-" + "x" * 40
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"

T = TypeVar("T")


def timestamp(offset_seconds: float = 0.0) -> str:
    """A wire timestamp ``offset_seconds`` from now (negative: in the past)."""
    return format_timestamp(datetime.now(UTC) + timedelta(seconds=offset_seconds))


def location_body(ts: str | None = None, **location: Any) -> dict[str, Any]:
    """A valid location report, with fields overridden by ``location``."""
    fields = {
        "latitude": 35.681236,
        "longitude": 139.767125,
        "altitude": 45.5,
        "heading": 90.5,
        "speed": 0.8,
        "accuracy": 0.15,
    }
    fields.update(location)
    return {"timestamp": ts or timestamp(), "location": fields}


def status_body(state: str, ts: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid status report in ``state``."""
    body = {
        "timestamp": ts or timestamp(),
        "state": state,
        "mission_id": "mission_12345",
        "current_waypoint": "room_201",
        "passengers_onboard": False,
        "operational_hours": True,
        "details": {"progress_percent": 10.0, "eta_seconds": 100, "distance_remaining_meters": 5},
    }
    body.update(fields)
    return body


def battery_body(
    soc: float = 85.5, charging: bool = False, ts: str | None = None
) -> dict[str, Any]:
    """A valid battery report."""
    return {
        "timestamp": ts or timestamp(),
        "battery": {
            "soc_percent": soc,
            "voltage": 52.3,
            "current": -8.2,
            "temperature": 32.5,
            "charging": charging,
            "estimated_runtime_minutes": 180,
            "health_percent": 95.0,
        },
    }


def error_body(
    severity: str = "warning", code: str = "NAV_OBSTACLE_BLOCKED", ts: str | None = None
) -> dict[str, Any]:
    """A valid error report."""
    return {
        "timestamp": ts or timestamp(),
        "error_code": code,
        "severity": severity,
        "subsystem": "navigation",
        "location": {"latitude": 35.6, "longitude": 139.7},
        "description": "Path blocked, rerouting",
        "recovery_action": "rerouting",
        "user_action_required": False,
    }


def docking_body(phase: str, ts: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid docking report in ``phase``."""
    body = {
        "timestamp": ts or timestamp(),
        "phase": phase,
        "marker_id": 42,
        "distance_to_marker_meters": 0.85,
        "alignment_error_degrees": 2.3,
        "docking_success": phase == "success",
        "attempts": 1,
        "details": {"marker_visible": True, "confidence": 0.95},
    }
    body.update(fields)
    return body


def mission_body(mission_id: str) -> dict[str, Any]:
    """A dispatch's mission: the contract's example (lobby entrance to room 201), unscheduled."""
    mission = copy.deepcopy(DISPATCH_EXAMPLE["mission"])
    del mission["scheduled_time"]
    return {**mission, "mission_id": mission_id}


TELEMETRY_TABLES = {
    "location": "vehicle_locations",
    "status": "vehicle_status",
    "battery": "vehicle_battery",
    "error": "vehicle_errors",
    "docking": "vehicle_docking",
}  # telemetry kind → the table its reports are stored in


def one_report_of_each_kind() -> dict[str, dict[str, Any]]:
    """A body of each telemetry kind, timestamped now, with values the tests look for again in
    the stored rows: latitude 35.5, navigating on mission_77, 64.5 % charge, a warning
    DOCK_MARKER_NOT_FOUND, approaching marker 7."""
    return {
        "location": location_body(latitude=35.5),
        "status": status_body("navigating", mission_id="mission_77"),
        "battery": battery_body(soc=64.5),
        "error": error_body("warning", code="DOCK_MARKER_NOT_FOUND"),
        "docking": docking_body("approaching", marker_id=7),
    }


@dataclasses.dataclass
class Vehicle:
    """A registered vehicle and a client already holding its token."""

    vehicle_id: str
    client_id: str
    client_secret: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this vehicle."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclasses.dataclass
class RunningHub:
    """A hub serving on ``base_url`` and an HTTP client pointed at it."""

    base_url: str
    client: httpx.AsyncClient
    settings: Settings
    admin_token: str = ""

    @property
    def admin_headers(self) -> dict[str, str]:
        """Authorization header of the configured admin."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def login(self, **body: Any) -> httpx.Response:
        """POST /api/v1/auth/token."""
        return await self.client.post("/api/v1/auth/token", json=body)

    async def register_vehicle(self, vehicle_id: str, name: str | None = None) -> Vehicle:
        """Register a vehicle as admin and log it in."""
        created = await self.client.post(
            "/api/v1/admin/vehicles",
            json={"vehicle_id": vehicle_id, "name": name or vehicle_id},
            headers=self.admin_headers,
        )
        assert created.status_code == 201, created.text
        credentials = created.json()
        login = await self.login(
            client_id=credentials["client_id"], client_secret=credentials["client_secret"]
        )
        assert login.status_code == 200, login.text
        return Vehicle(
            vehicle_id,
            credentials["client_id"],
            credentials["client_secret"],
            login.json()["access_token"],
        )

    async def create_user(self, username: str, role: str, password: str) -> str:
        """Create a person as admin and return their access token."""
        created = await self.client.post(
            "/api/v1/admin/users",
            json={"username": username, "password": password, "role": role},
            headers=self.admin_headers,
        )
        assert created.status_code == 201, created.text
        login = await self.login(grant_type="password", username=username, password=password)
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])

    async def post(self, vehicle: Vehicle, kind: str, body: Any) -> httpx.Response:
        """POST a telemetry body for ``vehicle``."""
        return await self.client.post(
            f"/api/v1/vehicle/{vehicle.vehicle_id}/{kind}", json=body, headers=vehicle.headers
        )


def hub_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a hub under test: port 0, fixed secret, fast retries, limits off."""
    values: dict[str, Any] = {
        "port": 0,
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "admin_username": ADMIN_USERNAME,
        "admin_password": ADMIN_PASSWORD,
        "db_pool_min": 2,
        "db_pool_max": 10,
        "rate_limit_enabled": False,
        # Hubs on one test database share a fleet; tests running at once on one Redis do not.
        "redis_namespace": "test-" + hashlib.sha1(database_url.encode()).hexdigest()[:12],
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_hub(database_url: str, **overrides: Any) -> AsyncIterator[RunningHub]:
    """Serve a hub for the duration of the block; stop it gracefully afterwards."""
    verify_ca = overrides.pop("admin_client_verify", None)
    settings = hub_settings(database_url, **overrides)
    stop = trio.Event()
    async with trio.open_nursery() as hub_nursery:
        binds = await hub_nursery.start(
            partial(serve_hub, settings, database_url, shutdown_trigger=stop.wait)
        )
        base_url = binds[0]
        verify: ssl.SSLContext | bool = True
        if verify_ca is not None:
            verify = ssl.create_default_context()
            verify_ca.configure_trust(verify)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, verify=verify) as client:
            hub = RunningHub(base_url, client, settings)
            login = await hub.login(
                grant_type="password", username=ADMIN_USERNAME, password=ADMIN_PASSWORD
            )
            assert login.status_code == 200, login.text
            hub.admin_token = login.json()["access_token"]
            yield hub
        stop.set()


@asynccontextmanager
async def guarded_hub(
    database_url: str, *, guard: float = 60.0, **overrides: Any
) -> AsyncIterator[RunningHub]:
    """:func:`running_hub`, with the whole block (start and stop too) failing after ``guard``
    seconds instead of hanging."""
    with trio.fail_after(guard):
        async with running_hub(database_url, **overrides) as hub:
            yield hub


async def until(
    probe: Callable[[], Awaitable[T]],
    ready: Callable[[T], bool],
    *,
    what: str,
    seconds: float = 10.0,
) -> T:
    """Call ``probe`` until ``ready`` accepts what it returns (some writes are made after the
    answer a test got); after ``seconds`` fail saying what was awaited and what was seen."""
    seen: list[T] = []
    with trio.move_on_after(seconds):
        while True:
            value = await probe()
            if ready(value):
                return value
            seen[:] = [value]
            await trio.sleep(0.05)
    raise AssertionError(f"waited {seconds:g} s for {what}; last seen: {seen[-1:]!r:.1000}")


async def frames_until(
    socket: Any, frame_type: str, *, seconds: float = 10.0
) -> list[dict[str, Any]]:
    """Frames from ``socket`` up to and including the first of ``frame_type``; after
    ``seconds`` fail saying which frames came instead."""
    frames: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        while True:
            frames.append(json.loads(await socket.get_message()))
            if frames[-1].get("type") == frame_type:
                return frames
    kinds = [frame.get("type") for frame in frames]
    raise AssertionError(f"waited {seconds:g} s for a {frame_type} frame; came: {kinds}")


class Timeline:
    """Strictly increasing wire timestamps at (or just after) the current time."""

    def __init__(self) -> None:
        self._last: datetime | None = None

    def __call__(self) -> str:
        moment = utc_now()
        if self._last is not None and moment <= self._last:
            moment = self._last + timedelta(milliseconds=1)
        self._last = moment
        return format_timestamp(moment)


async def count(hub: RunningHub, table: str, vehicle_id: str) -> int:
    """How many rows of ``vehicle_id`` the table holds."""
    from storage.testing import fetchval

    assert hub.settings.database_url is not None
    value = await trio.to_thread.run_sync(
        fetchval,
        hub.settings.database_url,
        f"SELECT count(*) FROM {table} WHERE vehicle_id = $1",
        vehicle_id,
    )
    return int(value)
