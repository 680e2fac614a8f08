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

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.accounts import storage_guard
from actors.vehicle.registry import VehicleRegistry
from hub.clock import format_timestamp, utc_now
from hub.contract.reservations import ReservationCreate, ReservationUpdate
from hub.errors import ConflictError, InternalError, InvalidInputError, NotFoundError
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
    raise InvalidInputError(
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
    raise InvalidInputError(
        "invalid_timestamp",
        f"scheduled_time is {when}",
        field="scheduled_time",
        received_value=format_timestamp(scheduled_time),
        details={"server_time": format_timestamp(now)},
    )


def mission_id_for(reservation_id: str) -> str:
    """The mission id a dispatch for this reservation uses."""
    return mission_queries.MISSION_PREFIX + reservation_id.removeprefix(
        mission_queries.RESERVATION_PREFIX
    )


class MissionService:
    """Reads missions; books, changes and cancels reservations."""

    def __init__(self, *, database: Database, registry: VehicleRegistry) -> None:
        self._database = database
        self._registry = registry

    # --- missions ---------------------------------------------------------------------

    async def missions(
        self,
        *,
        vehicle_id: str | None,
        status: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` missions newest first, after the key ``before``, optionally of one
        vehicle / in one status."""
        async with storage_guard():
            return await mission_queries.missions_page(
                self._database, vehicle_id=vehicle_id, status=status, before=before, limit=limit
            )

    async def mission(self, mission_id: str) -> Row:
        """One mission; NotFoundError if there is none."""
        async with storage_guard():
            row = await mission_queries.mission(self._database, mission_id)
        if row is None:
            raise NotFoundError(f"No mission {mission_id}")
        return row

    # --- reservations -----------------------------------------------------------------

    async def create(self, body: ReservationCreate, caller: Caller) -> Row:
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
            await self._audit(caller, "reservation_create", row)
            return row
        raise InternalError("Could not allocate a reservation id")

    async def reservation(self, reservation_id: str) -> Row:
        """One reservation; NotFoundError if there is none."""
        return await self._row(reservation_id)

    async def reservations(
        self,
        *,
        status: str | None,
        vehicle_id: str | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` reservations soonest first, after the key ``after``, filtered by
        status, vehicle and scheduled time."""
        async with storage_guard():
            return await mission_queries.reservations_page(
                self._database,
                status=status,
                vehicle_id=vehicle_id,
                start=start,
                end=end,
                after=after,
                limit=limit,
            )

    async def update(self, reservation_id: str, body: ReservationUpdate, caller: Caller) -> Row:
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

    async def cancel(self, reservation_id: str, caller: Caller) -> Row:
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
    ) -> Row:
        for _ in range(UPDATE_ATTEMPTS):
            current = await self._row(reservation_id)
            current_status = str(current["status"])
            wanted = status or current_status
            check_transition(current_status, wanted)
            edits = scheduled_time is not None or set_vehicle
            if wanted == current_status and not edits:
                return current  # nothing to do (e.g. cancelling twice)
            if edits and not TRANSITIONS[current_status]:
                raise InvalidInputError(
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
                await self._audit(caller, action, row, previous_status=current_status)
                return row
            # Someone changed its status meanwhile: check the rules again against that.
        raise ConflictError("conflict", "The reservation keeps changing; try again")

    async def _row(self, reservation_id: str) -> Row:
        async with storage_guard():
            row = await mission_queries.reservation(self._database, reservation_id)
        if row is None:
            raise NotFoundError(f"No reservation {reservation_id}")
        return row

    async def _audit(
        self, caller: Caller, action: str, row: Row, previous_status: str | None = None
    ) -> None:
        details: dict[str, Any] = {
            "reservation_id": row["reservation_id"],
            "status": row["status"],
            "scheduled_time": format_timestamp(row["scheduled_time"]),
        }
        if previous_status is not None:
            details["previous_status"] = previous_status
        async with storage_guard():
            await account_queries.write_audit(
                self._database,
                action=action,
                actor=caller.username,
                actor_role=caller.role,
                vehicle_id=row["vehicle_id"],
                outcome=row["status"],
                details=details,
                request_id=caller.request_id,
            )
