"""Missions and reservations for people (CONTRACT §8, TVM-DB-SCHEMA-002).

Missions are created by dispatch commands; here they are only read. Reservations are booked
by operators: ``pending`` → ``confirmed`` → ``completed``, or ``cancelled`` from either open
state; ``confirmed`` may go back to ``pending`` (the booking is reopened). ``cancelled`` and
``completed`` are final: such a reservation can no longer be changed. Deleting a reservation
cancels it and keeps the row. A reservation ``resv_<hex>`` is carried out by the mission
``mission_<hex>`` (its ``mission_id``): dispatching that mission id links the two.

A scheduled time must lie between 5 minutes in the past and a year ahead when it is set.
Every change is written to the audit log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.accounts import storage_guard
from actors.vehicle.registry import VehicleRegistry
from hub.clock import format_timestamp, utc_now
from hub.contract.reservations import RESERVATION_STATUSES, ReservationCreate, ReservationUpdate
from hub.errors import ContractError, bad_request, not_found
from storage.database import Database, Row, UniqueViolationError
from storage.queries import accounts as account_queries
from storage.queries import missions as mission_queries

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("confirmed", "cancelled"),
    "confirmed": ("pending", "cancelled", "completed"),
    "cancelled": (),
    "completed": (),
}
"""Status changes a reservation allows (besides keeping its status)."""

SCHEDULE_PAST_SLACK = timedelta(minutes=5)
SCHEDULE_HORIZON = timedelta(days=366)
MISSION_STATUS_PATTERN = re.compile(r"^[a-z_]{1,32}$")
VEHICLE_ID_FILTER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UPDATE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts, for ``created_by`` and the audit log."""

    username: str
    role: str
    request_id: str | None = None


def check_transition(current: str, wanted: str) -> None:
    """400 ``invalid_state_transition`` with ``details: {from, to, allowed}`` unless allowed."""
    if wanted == current or wanted in TRANSITIONS[current]:
        return
    raise bad_request(
        "invalid_state_transition",
        f"A {current} reservation cannot become {wanted}",
        field="status",
        received_value=wanted,
        details={"from": current, "to": wanted, "allowed": list(TRANSITIONS[current])},
    )


def check_schedule(scheduled_time: datetime, now: datetime) -> None:
    """400 ``invalid_timestamp`` for a time more than 5 minutes past or a year ahead."""
    if now - SCHEDULE_PAST_SLACK <= scheduled_time <= now + SCHEDULE_HORIZON:
        return
    when = "in the past" if scheduled_time < now else "more than a year ahead"
    raise bad_request(
        "invalid_timestamp",
        f"scheduled_time is {when}",
        field="scheduled_time",
        received_value=format_timestamp(scheduled_time),
        details={"server_time": format_timestamp(now)},
    )


def encode_cursor(moment: datetime, key: str) -> str:
    """An opaque keyset cursor (full microsecond precision, so no row is skipped)."""
    raw = json.dumps([moment.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position inside a cursor; 400 ``validation_error`` if it was tampered with."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        moment_text, key = json.loads(raw)
        moment = datetime.fromisoformat(moment_text)
        if moment.tzinfo is None or not isinstance(key, str):
            raise ValueError("bad cursor")
        return moment, key
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            "validation_error", "Invalid cursor", field="cursor", received_value=cursor
        ) from None


def check_vehicle_filter(vehicle_id: str | None) -> None:
    """400 ``validation_error`` for a ``vehicle_id`` filter that cannot be a vehicle id."""
    if vehicle_id is not None and not VEHICLE_ID_FILTER.fullmatch(vehicle_id):
        raise bad_request(
            "validation_error",
            "vehicle_id must match ^[A-Za-z0-9_-]{1,64}$",
            field="vehicle_id",
            received_value=vehicle_id,
        )


def _timestamp_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _json_or_none(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def mission_item(row: Row) -> dict[str, Any]:
    """A stored mission as the API shows it."""
    return {
        "mission_id": row["mission_id"],
        "vehicle_id": row["vehicle_id"],
        "reservation_id": row["reservation_id"],
        "status": row["status"],
        "priority": row["priority"],
        "pickup": _json_or_none(row["pickup"]),
        "destination": _json_or_none(row["destination"]),
        "scheduled_time": _timestamp_or_none(row["scheduled_time"]),
        "start_time": _timestamp_or_none(row["start_time"]),
        "end_time": _timestamp_or_none(row["end_time"]),
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def mission_id_for(reservation_id: str) -> str:
    """The mission id a dispatch for this reservation uses."""
    return mission_queries.MISSION_PREFIX + reservation_id.removeprefix(
        mission_queries.RESERVATION_PREFIX
    )


def reservation_item(row: Row) -> dict[str, Any]:
    """A stored reservation as the API shows it."""
    return {
        "reservation_id": row["reservation_id"],
        "passenger_name": row["passenger_name"],
        "pickup": json.loads(row["pickup"]),
        "destination": json.loads(row["destination"]),
        "scheduled_time": format_timestamp(row["scheduled_time"]),
        "status": row["status"],
        "vehicle_id": row["vehicle_id"],
        "mission_id": mission_id_for(row["reservation_id"]),
        "mission_status": row["mission_status"],
        "created_by": row["created_by"],
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def _page(
    items: list[dict[str, Any]], rows: list[Row], limit: int, cursor_of: Callable[[Row], str]
) -> dict[str, Any]:
    next_cursor = cursor_of(rows[limit - 1]) if len(rows) > limit else None
    return {"items": items[:limit], "next_cursor": next_cursor}


class MissionService:
    """Reads missions; books, changes and cancels reservations."""

    def __init__(self, *, database: Database, registry: VehicleRegistry) -> None:
        self._database = database
        self._registry = registry

    # --- missions ---------------------------------------------------------------------

    async def missions(
        self, *, vehicle_id: str | None, status: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        """A page of missions, newest first, optionally of one vehicle / in one status."""
        check_vehicle_filter(vehicle_id)
        if status is not None and not MISSION_STATUS_PATTERN.fullmatch(status):
            raise bad_request(
                "validation_error",
                "status must be a mission status such as dispatched or completed",
                field="status",
                received_value=status,
            )
        before = decode_cursor(cursor) if cursor else None
        async with storage_guard():
            rows = await mission_queries.missions_page(
                self._database,
                vehicle_id=vehicle_id,
                status=status,
                before=before,
                limit=limit + 1,
            )
        return _page(
            [mission_item(row) for row in rows],
            rows,
            limit,
            lambda row: encode_cursor(row["created_at"], row["mission_id"]),
        )

    async def mission(self, mission_id: str) -> dict[str, Any]:
        """One mission; 404 ``not_found``."""
        async with storage_guard():
            row = await mission_queries.mission(self._database, mission_id)
        if row is None:
            raise not_found("not_found", f"No mission {mission_id}")
        return mission_item(row)

    # --- reservations -----------------------------------------------------------------

    async def create(self, body: ReservationCreate, caller: Caller) -> dict[str, Any]:
        """Book a pending reservation with a new ``resv_<hex>`` id."""
        check_schedule(body.scheduled_time, utc_now())
        if body.vehicle_id is not None:
            self._registry.require(body.vehicle_id)
        for _ in range(UPDATE_ATTEMPTS):
            reservation_id = "resv_" + secrets.token_hex(8)
            try:
                async with storage_guard():
                    row = await mission_queries.insert_reservation(
                        self._database,
                        reservation_id=reservation_id,
                        passenger_name=body.passenger_name,
                        pickup=body.pickup.model_dump(mode="json"),
                        destination=body.destination.model_dump(mode="json"),
                        scheduled_time=body.scheduled_time,
                        vehicle_id=body.vehicle_id,
                        created_by=caller.username,
                    )
            except UniqueViolationError:
                continue  # 64 random bits collided: draw again
            item = reservation_item(row)
            await self._audit(caller, "reservation_create", item)
            return item
        raise ContractError(500, "internal_error", "Could not allocate a reservation id")

    async def reservation(self, reservation_id: str) -> dict[str, Any]:
        """One reservation; 404 ``not_found``."""
        return reservation_item(await self._row(reservation_id))

    async def reservations(
        self,
        *,
        status: str | None,
        vehicle_id: str | None,
        start: datetime | None,
        end: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """A page of reservations, soonest first, filtered by status, vehicle and time."""
        if status is not None and status not in RESERVATION_STATUSES:
            raise bad_request(
                "invalid_enum",
                "status must be one of " + ", ".join(RESERVATION_STATUSES),
                field="status",
                received_value=status,
            )
        check_vehicle_filter(vehicle_id)
        after = decode_cursor(cursor) if cursor else None
        async with storage_guard():
            rows = await mission_queries.reservations_page(
                self._database,
                status=status,
                vehicle_id=vehicle_id,
                start=start,
                end=end,
                after=after,
                limit=limit + 1,
            )
        return _page(
            [reservation_item(row) for row in rows],
            rows,
            limit,
            lambda row: encode_cursor(row["scheduled_time"], row["reservation_id"]),
        )

    async def update(
        self, reservation_id: str, body: ReservationUpdate, caller: Caller
    ) -> dict[str, Any]:
        """Change time, vehicle or status under the transition rules (module doc)."""
        fields = body.model_fields_set
        if body.scheduled_time is not None:
            check_schedule(body.scheduled_time, utc_now())
        if body.vehicle_id is not None:
            self._registry.require(body.vehicle_id)
        return await self._change(
            reservation_id,
            caller,
            action="reservation_update",
            status=body.status,
            scheduled_time=body.scheduled_time,
            set_vehicle="vehicle_id" in fields,
            vehicle_id=body.vehicle_id,
        )

    async def cancel(self, reservation_id: str, caller: Caller) -> dict[str, Any]:
        """Cancel (idempotent for a cancelled one; a completed one stays completed: 400)."""
        return await self._change(
            reservation_id,
            caller,
            action="reservation_cancel",
            status="cancelled",
            scheduled_time=None,
            set_vehicle=False,
            vehicle_id=None,
        )

    async def _change(
        self,
        reservation_id: str,
        caller: Caller,
        *,
        action: str,
        status: str | None,
        scheduled_time: datetime | None,
        set_vehicle: bool,
        vehicle_id: str | None,
    ) -> dict[str, Any]:
        for _ in range(UPDATE_ATTEMPTS):
            current = await self._row(reservation_id)
            current_status = str(current["status"])
            wanted = status or current_status
            check_transition(current_status, wanted)
            edits = scheduled_time is not None or set_vehicle
            if wanted == current_status and not edits:
                return reservation_item(current)  # nothing to do (e.g. cancelling twice)
            if edits and not TRANSITIONS[current_status]:
                raise bad_request(
                    "invalid_state_transition",
                    f"A {current_status} reservation can no longer be changed",
                    field="status",
                    received_value=current_status,
                    details={"from": current_status, "to": wanted, "allowed": []},
                )
            async with storage_guard():
                row = await mission_queries.update_reservation(
                    self._database,
                    reservation_id,
                    expected_status=current_status,
                    status=wanted,
                    scheduled_time=scheduled_time,
                    set_vehicle=set_vehicle,
                    vehicle_id=vehicle_id,
                )
            if row is not None:
                item = reservation_item(row)
                await self._audit(caller, action, item, previous_status=current_status)
                return item
            # Someone changed its status meanwhile: check the rules again against that.
        raise ContractError(409, "conflict", "The reservation keeps changing; try again")

    async def _row(self, reservation_id: str) -> Row:
        async with storage_guard():
            row = await mission_queries.reservation(self._database, reservation_id)
        if row is None:
            raise not_found("not_found", f"No reservation {reservation_id}")
        return row

    async def _audit(
        self, caller: Caller, action: str, item: dict[str, Any], previous_status: str | None = None
    ) -> None:
        details: dict[str, Any] = {
            "reservation_id": item["reservation_id"],
            "status": item["status"],
            "scheduled_time": item["scheduled_time"],
        }
        if previous_status is not None:
            details["previous_status"] = previous_status
        async with storage_guard():
            await account_queries.write_audit(
                self._database,
                action=action,
                actor=caller.username,
                actor_role=caller.role,
                vehicle_id=item["vehicle_id"],
                outcome=item["status"],
                details=details,
                request_id=caller.request_id,
            )
