"""VehicleActor under a supervisor on the autojump clock, with an in-memory store.

No database and no sockets: the vehicle's socket is an :class:`OutboundLink` the test reads,
and storage is :class:`~tests.unit.fakes.MemoryVehicleStore`, which can be slow or fail.
Times are virtual seconds since the actor started; an emergency stop's row is retried every
``STOP_RECORD_RETRY`` = 1 s while the database is away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from actors.sockets.outbound import OutboundLink
from actors.vehicle.command_rows import STOP_ANSWER_GRACE
from actors.vehicle.messages import (
    AckReceived,
    CommandNow,
    CommandOrigin,
    CommandStatus,
    Connect,
    Report,
    ReportAccepted,
    SendCommand,
    VehicleMessage,
)
from actors.vehicle.ports import AuditEntry, NewCommand
from api.errors import answer_for
from hub.clock import format_timestamp, utc_now
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand, parse_command
from hub.contract.telemetry import LocationUpdate, StatusUpdate, TelemetryRecord
from hub.errors import (
    ConflictError,
    ContractError,
    InternalError,
    InvalidInputError,
    RateLimitedError,
    UnavailableError,
)
from hub.runtime import ActorRef
from hub.runtime.testing import open_supervisor
from storage.database import StorageError, StorageUnavailableError
from tests.unit.fakes import MemoryVehicleStore, RecordingPublisher, StatusWrite, vehicle_actor
from tests.unit.waiting import until, waiting_for

VEHICLE = "wheelchair_001"
GUARD = 600.0  # virtual seconds under autojump_clock
WAIT = 60.0  # virtual seconds a helper waits before it says what it saw
OPERATOR = CommandOrigin("olivia", "operator", session_id="sess_1", request_id="req_1")


@dataclass
class Vehicle:
    """A running VehicleActor, its store and publisher, and how the hub talks to it."""

    ref: ActorRef[VehicleMessage]
    store: MemoryVehicleStore
    publisher: RecordingPublisher
    start: float

    def now(self) -> float:
        return trio.current_time() - self.start

    def since_start(self, moment: float) -> float:
        return moment - self.start

    async def report(self, record: TelemetryRecord) -> ReportAccepted:
        return await self.ref.ask(lambda reply: Report(record, None, reply))

    async def send(self, command: AnyCommand, origin: CommandOrigin = OPERATOR) -> CommandStatus:
        return await self.ref.ask(lambda reply: SendCommand(command, origin, reply))

    async def refusal(self, command: AnyCommand) -> ContractError:
        with pytest.raises(ContractError) as refused:
            await self.send(command)
        return refused.value

    async def status_now(self, command_id: str) -> CommandStatus:
        return await self.ref.ask(lambda reply: CommandNow(command_id, reply))

    async def connect(self) -> OutboundLink:
        link = OutboundLink()
        await self.ref.ask(lambda reply: Connect(link, reply))
        assert (await link.next_frame())["type"] == "welcome"
        return link

    def rows_at(self) -> dict[str, float]:
        """When each command row landed in the store."""
        return {
            landed.value.command_id: self.since_start(landed.at) for landed in self.store.commands
        }


@asynccontextmanager
async def open_vehicle(
    store: MemoryVehicleStore | None = None, **options: Any
) -> AsyncIterator[Vehicle]:
    store = store if store is not None else MemoryVehicleStore()
    publisher = RecordingPublisher()
    async with open_supervisor() as supervisor:
        ref = await supervisor.start_child(
            "vehicle", VEHICLE, lambda: vehicle_actor(VEHICLE, store, publisher, **options)
        )
        yield Vehicle(ref, store, publisher, trio.current_time())


def location(offset: float = 0.0) -> LocationUpdate:
    """A location ``offset`` seconds from the hub's wall clock now (negative: in the past)."""
    moment = utc_now() + timedelta(seconds=offset)
    return LocationUpdate.model_validate(
        {
            "timestamp": format_timestamp(moment),
            "location": {
                "latitude": 35.681236,
                "longitude": 139.767125,
                "heading": 90.0,
                "speed": 0.5,
                "accuracy": 0.1,
            },
        }
    )


def status(state: str, offset: float = 0.0) -> StatusUpdate:
    moment = utc_now() + timedelta(seconds=offset)
    return StatusUpdate.model_validate(
        {
            "timestamp": format_timestamp(moment),
            "state": state,
            "passengers_onboard": False,
            "operational_hours": True,
        }
    )


def command(kind: str, command_id: str, **fields: Any) -> AnyCommand:
    return parse_command({"type": kind, "command_id": command_id, **fields})


def configure(command_id: str) -> AnyCommand:
    return command("configure", command_id, config_updates={"audio_volume": 10})


def stop(command_id: str = "cmd_ESTOP_1") -> AnyCommand:
    return command("emergency_stop", command_id, reason="obstacle")


def executed(command_id: str) -> CommandAck:
    return CommandAck.model_validate(
        {"type": "command_ack", "command_id": command_id, "status": "executed"}
    )


def is_stop(row: NewCommand) -> bool:
    return row.type == "emergency_stop"


def stop_row_fails(times: int, error: StorageError) -> MemoryVehicleStore:
    """A store that refuses the next ``times`` emergency stop rows with ``error``."""
    store = MemoryVehicleStore()
    store.fail_next("insert_command", times, error, only=is_stop)
    return store


async def next_frame(link: OutboundLink, vehicle: Vehicle) -> tuple[float, str]:
    """The next frame on the vehicle's socket: (when it was taken, its command_id)."""
    with waiting_for("a frame on the vehicle's socket", lambda: f"{link.depth()} waiting", WAIT):
        frame = await link.next_frame()
    return vehicle.now(), frame["command_id"]


# --- live reports ----------------------------------------------------------------------------


async def test_a_live_report_is_answered_only_after_the_store_committed_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            vehicle.store.delays["commit"] = 2.0  # the database takes 2 s
            record = location()
            answer = await vehicle.report(record)
            assert vehicle.now() == 2.0
            [committed] = vehicle.store.commits
            assert vehicle.since_start(committed.at) == 2.0
            assert committed.value.inserted == (True,)
            assert ("location", VEHICLE, record.timestamp) in vehicle.store.telemetry
            assert (answer.kind, answer.timestamp, answer.duplicate) == (
                "location",
                record.timestamp,
                False,
            )
            [(vehicle_id, event)] = vehicle.publisher.vehicle_events
            assert (vehicle_id, event["type"]) == (VEHICLE, "location_update")


async def test_a_resent_report_answers_duplicate_and_is_neither_stored_nor_published_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            record = location()
            first = await vehicle.report(record)
            again = await vehicle.report(record)
            assert (first.duplicate, again.duplicate) == (False, True)
            assert [landed.value.inserted for landed in vehicle.store.commits] == [
                (True,),
                (False,),
            ]
            assert len(vehicle.store.telemetry) == 1
            assert len(vehicle.publisher.vehicle_events) == 1


async def test_a_forbidden_state_transition_is_refused_and_nothing_is_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            await vehicle.report(status("charging", -1.0))
            with pytest.raises(InvalidInputError) as refused:
                await vehicle.report(status("navigating"))
            error = refused.value
            assert (answer_for(error).status, error.error, error.field) == (
                400,
                "invalid_state_transition",
                "state",
            )
            assert error.details is not None
            assert (error.details["from"], error.details["to"]) == ("charging", "navigating")
            assert [key[0] for key in vehicle.store.telemetry] == ["status"]
            assert len(vehicle.store.calls_of("commit")) == 1  # the refused one was not tried
            assert [event["state"] for _, event in vehicle.publisher.vehicle_events] == ["charging"]


async def test_the_sixth_location_within_a_second_is_refused_and_a_token_is_back_after_1_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            answers = [await vehicle.report(location(-0.01 * n)) for n in range(5)]
            assert [answer.quota.remaining for answer in answers] == [4, 3, 2, 1, 0]
            with pytest.raises(RateLimitedError) as refused:
                await vehicle.report(location(-0.1))
            error = refused.value
            assert (answer_for(error).status, error.retry_after, error.limit) == (429, 1, 5)
            assert len(vehicle.store.telemetry) == 5  # the refused one was not stored

            await trio.sleep_until(vehicle.start + 0.999)
            with pytest.raises(RateLimitedError):
                await vehicle.report(location(-0.2))
            await trio.sleep_until(vehicle.start + 1.0)
            assert not (await vehicle.report(location(-0.3))).duplicate
            assert len(vehicle.store.telemetry) == 6


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-301.0, False), (-290.0, True), (4.0, True), (6.0, False)],
    ids=["301 s old", "290 s old", "4 s ahead", "6 s ahead"],
)
async def test_a_live_timestamp_outside_the_window_is_refused(
    autojump_clock: trio.testing.MockClock, offset: float, accepted: bool
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            record = location(offset)
            if accepted:
                assert not (await vehicle.report(record)).duplicate
                return
            with pytest.raises(InvalidInputError) as refused:
                await vehicle.report(record)
            error = refused.value
            assert (error.error, error.field, error.received_value) == (
                "invalid_timestamp",
                "timestamp",
                format_timestamp(record.timestamp),
            )
            assert vehicle.store.calls_of("commit") == []


# --- the resume rule ------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, "idle", "charging", "error"])
async def test_a_resume_is_refused_unless_the_vehicle_is_in_emergency_stop(
    autojump_clock: trio.testing.MockClock, state: str | None
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            if state is not None:
                await vehicle.report(status(state))
            error = await vehicle.refusal(command("resume", "cmd_resume_1"))
            assert isinstance(error, ConflictError)
            assert (answer_for(error).status, error.error, error.field) == (
                409,
                "invalid_command_state",
                "type",
            )
            await trio.testing.wait_all_tasks_blocked()
            assert vehicle.store.commands == []
            assert (await vehicle.status_now("cmd_resume_1")).status == "unknown"


async def test_a_resume_is_accepted_right_after_an_emergency_stop_status_was_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            await vehicle.report(status("emergency_stop"))
            answer = await vehicle.send(command("resume", "cmd_resume_1"))
            assert (answer.command_id, answer.status) == ("cmd_resume_1", "queued")
            assert vehicle.now() == 0.0
            assert vehicle.store.command_ids() == ["cmd_resume_1"]


async def test_the_emergency_stop_state_is_forgotten_after_five_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            await vehicle.report(status("emergency_stop"))
            await trio.sleep_until(vehicle.start + 300.0)
            assert (await vehicle.send(command("resume", "cmd_resume_1"))).status == "queued"
            await trio.sleep_until(vehicle.start + 300.001)
            error = await vehicle.refusal(command("resume", "cmd_resume_2"))
            assert error.error == "invalid_command_state"


# --- emergency stops and storage ------------------------------------------------------------


async def test_an_emergency_stop_goes_out_at_once_while_its_row_waits_for_the_database(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = stop_row_fails(3, StorageUnavailableError("connection refused"))
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            link = await vehicle.connect()
            answer = await vehicle.send(stop())
            assert (vehicle.now(), answer.status) == (0.0, "sent")
            assert await next_frame(link, vehicle) == (0.0, "cmd_ESTOP_1")

            # An ordinary command meanwhile is not held up behind the stop's retries.
            await trio.sleep_until(vehicle.start + 0.5)
            assert (await vehicle.send(configure("cmd_cfg_1"))).status == "sent"
            assert await next_frame(link, vehicle) == (0.5, "cmd_cfg_1")
            assert vehicle.rows_at() == {"cmd_cfg_1": 0.5}

            await until(
                lambda: "cmd_ESTOP_1" in vehicle.store.command_ids(),
                what="the emergency stop's row",
                seen=vehicle.store.command_ids,
                seconds=WAIT,
            )
            assert vehicle.rows_at() == {"cmd_cfg_1": 0.5, "cmd_ESTOP_1": 3.0}
            attempts = [vehicle.since_start(at) for at in store.calls_of("insert_command")]
            assert attempts == [0.0, 0.5, 1.0, 2.0, 3.0]  # the stop at 0, 1, 2 and 3 s
            row = store.row_of("cmd_ESTOP_1").value
            assert (row.status, row.sender, row.queue_position < 0) == ("sent", "olivia", True)
            [audited] = store.audits
            assert vehicle.since_start(audited.at) == 3.0
            assert audited.value == AuditEntry(
                "emergency_stop",
                "olivia",
                "operator",
                VEHICLE,
                "sent",
                {"command_id": "cmd_ESTOP_1", "payload": row.payload},
                "req_1",
            )


@pytest.mark.parametrize(
    ("row_takes", "answered_at"),
    [(0.2, 0.2), (5.0, STOP_ANSWER_GRACE)],
    ids=["row-written-first", "slow-database"],
)
async def test_a_stop_is_answered_once_its_row_is_written_or_after_the_grace(
    autojump_clock: trio.testing.MockClock, row_takes: float, answered_at: float
) -> None:
    store = MemoryVehicleStore(delays={"insert_command": row_takes})
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            link = await vehicle.connect()
            answers: list[tuple[float, str]] = []

            async def send_stop() -> None:
                answer = await vehicle.send(stop())
                answers.append((vehicle.now(), answer.status))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_stop)
                assert await next_frame(link, vehicle) == (0.0, "cmd_ESTOP_1")  # sent at once
            assert answers == [(answered_at, "sent")]
            stored = "cmd_ESTOP_1" in store.command_ids()
            assert stored is (row_takes <= STOP_ANSWER_GRACE)  # a read now finds it


async def test_an_ack_that_came_before_the_stop_s_row_is_written_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = stop_row_fails(3, StorageUnavailableError("connection refused"))
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            await vehicle.connect()
            await vehicle.send(stop())
            await trio.sleep_until(vehicle.start + 1.5)
            answer = executed("cmd_ESTOP_1")
            await vehicle.ref.tell(AckReceived(answer))
            await until(
                lambda: len(store.audits) == 2,
                what="the stop's result and its own audit record",
                seen=lambda: store.audits,
                seconds=WAIT,
            )
            await trio.testing.wait_all_tasks_blocked()
            assert vehicle.rows_at() == {"cmd_ESTOP_1": 3.0}
            # Its "executed" came while it had no row; read back now, the row says so.
            ack = answer.model_dump(mode="json", exclude_none=True)
            row = store.command_rows["cmd_ESTOP_1"]
            assert (row["status"], row["ack"]) == ("executed", ack)
            assert sorted(landed.value.action for landed in store.audits) == [
                "emergency_stop",
                "emergency_stop_result",
            ]


async def test_a_stop_whose_row_the_database_refuses_is_sent_and_not_retried(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = stop_row_fails(1, StorageError("value too long for type"))
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            link = await vehicle.connect()
            assert (await vehicle.send(stop())).status == "sent"
            assert await next_frame(link, vehicle) == (0.0, "cmd_ESTOP_1")
            await trio.sleep(30)
            assert store.calls_of("insert_command") == [vehicle.start]  # one attempt
            assert store.commands == []
            # Unacknowledged, it ends "timeout" at 15 s; the stop is audited all the same.
            assert [landed.value.action for landed in store.audits] == [
                "emergency_stop",
                "emergency_stop_result",
            ]
    assert "emergency stop cmd_ESTOP_1 refused by the database" in caplog.text


# --- ordinary commands and storage ----------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "answered", "http_status"),
    [
        (StorageUnavailableError("connection refused"), UnavailableError, 503),
        (StorageError("value too long for type"), InternalError, 500),
    ],
    ids=["database away", "data refused"],
)
async def test_a_command_whose_row_fails_is_refused_without_delaying_the_next(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    failure: StorageError,
    answered: type[ContractError],
    http_status: int,
) -> None:
    caplog.set_level(logging.ERROR)
    store = MemoryVehicleStore()
    store.fail_next("insert_command", 1, failure)
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            link = await vehicle.connect()
            error = await vehicle.refusal(configure("cmd_cfg_1"))
            assert type(error) is answered
            assert answer_for(error).status == http_status
            assert (await vehicle.status_now("cmd_cfg_1")).status == "unknown"

            assert (await vehicle.send(configure("cmd_cfg_2"))).status == "sent"
            assert await next_frame(link, vehicle) == (0.0, "cmd_cfg_2")  # not cmd_cfg_1
            assert vehicle.rows_at() == {"cmd_cfg_2": 0.0}
    logged = "the database refused command cmd_cfg_1" in caplog.text
    assert logged is (answered is InternalError)  # a data error is a bug: logged


async def test_a_command_still_waiting_for_its_row_when_a_stop_comes_is_not_sent_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryVehicleStore(delays={"insert_command": 5.0})  # a slow database
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            link = await vehicle.connect()
            async with trio.open_nursery() as nursery:
                refusals: list[ContractError] = []

                async def send_configure() -> None:
                    refusals.append(await vehicle.refusal(configure("cmd_cfg_1")))

                async def send_stop() -> None:  # answered after the grace, acked by then
                    assert (await vehicle.send(stop())).status == "executed"

                nursery.start_soon(send_configure)
                await trio.sleep_until(vehicle.start + 1.0)
                nursery.start_soon(send_stop)
                assert await next_frame(link, vehicle) == (1.0, "cmd_ESTOP_1")
                await vehicle.ref.tell(AckReceived(executed("cmd_ESTOP_1")))
            [error] = refusals
            assert (vehicle.now(), error.error, error.field) == (
                5.0,
                "invalid_command_state",
                "command_id",
            )
            await until(
                lambda: StatusWrite(["cmd_cfg_1"], "dropped") in store.statuses,
                what="cmd_cfg_1 recorded as dropped",
                seen=lambda: store.statuses,
                seconds=WAIT,
            )
            assert link.depth() == 0  # the configure never went out


@pytest.mark.parametrize("kind", ["configure", "emergency_stop"])
async def test_a_command_id_used_before_is_refused_and_not_sent_again(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    first = configure("cmd_1") if kind == "configure" else stop("cmd_ESTOP_1")
    with trio.fail_after(GUARD):
        async with open_vehicle() as vehicle:
            link = await vehicle.connect()
            await vehicle.send(first)
            assert await next_frame(link, vehicle) == (0.0, first.command_id)
            error = await vehicle.refusal(first)
            assert (type(error), error.error, answer_for(error).status) == (
                ConflictError,
                "duplicate_command",
                409,
            )
            await trio.testing.wait_all_tasks_blocked()
            assert link.depth() == 0
            assert vehicle.store.command_ids() == [first.command_id]


async def test_a_stop_row_that_lands_late_still_says_when_the_stop_was_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryVehicleStore()
    store.fail_next("insert_command", 3, StorageUnavailableError("down"), only=is_stop)
    with trio.fail_after(GUARD):
        async with open_vehicle(store) as vehicle:
            await vehicle.connect()
            await vehicle.send(stop())  # sent on the link at t = 0
            await until(
                lambda: "cmd_ESTOP_1" in store.command_rows,
                what="the stop's row",
                seen=lambda: store.command_rows,
                seconds=WAIT,
            )
            await trio.testing.wait_all_tasks_blocked()
            row = store.command_rows["cmd_ESTOP_1"]
            # Sent once, at acceptance: the row that landed 3 s later says so.
            assert (row["status"], row["attempts"]) == ("sent", 1)
            assert isinstance(row["sent_at"], datetime)
            assert abs((utc_now() - row["sent_at"]).total_seconds()) < 60
