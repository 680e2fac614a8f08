"""CommandDesk (CONTRACT §6.3): send, 5 s ack timeout, 3 sends, statuses, offline queue.

The desk is a state machine with no timers of its own; the test plays its VehicleActor:
:class:`Desk` calls the desk at the current trio time, a driver task calls ``tick`` at
``next_deadline()`` (and looks again whenever the desk was changed), and a persistence lane
runs the desk's storage jobs in order against a :class:`~tests.unit.fakes.MemoryVehicleStore`
and reports settled statuses back (``status_written``), as the actor's lanes do. Everything
runs on the autojump clock; times are virtual seconds since the start of the test.
"""

from __future__ import annotations

import copy
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
from actors.vehicle.command_desk import CommandDesk, PendingCommand, PersistJob
from actors.vehicle.command_intake import resume_allowed
from actors.vehicle.messages import CommandStatus
from actors.vehicle.offline_queue import QueuedCommand
from actors.vehicle.ports import AuditEntry
from hub.clock import utc_now
from hub.contract.command_acks import CommandAck
from hub.contract.commands import DISPATCH_EXAMPLE
from hub.runtime import Reply
from storage.database import StorageError, StorageUnavailableError
from tests.unit.fakes import MemoryVehicleStore, RecordingPublisher, StatusWrite
from tests.unit.waiting import waiting_for

VEHICLE = "wheelchair_001"
GUARD = 600.0  # virtual seconds under autojump_clock
WAIT = 120.0  # virtual seconds a helper waits before it says what it saw
TIMESTAMP = "2025-12-16T10:30:45.123Z"

logger = logging.getLogger(__name__)


@dataclass
class Desk:
    """A desk, and the three things its VehicleActor does for it (see the module docstring)."""

    desk: CommandDesk
    publisher: RecordingPublisher
    store: MemoryVehicleStore
    start: float
    changed: trio.Event

    def now(self) -> float:
        return trio.current_time() - self.start

    async def sleep_until(self, at: float) -> None:
        await trio.sleep_until(self.start + at)

    # --- what the control task tells the desk, at the current trio time ---------------------

    def deliver(self, pending: PendingCommand) -> None:
        self.desk.deliver(pending, trio.current_time())
        self.changed.set()

    def connected(self, link: OutboundLink) -> None:
        self.desk.connected(link, trio.current_time())
        self.changed.set()

    def connect(self, *, capacity: int = 1000) -> OutboundLink:
        """A new vehicle socket, connected now."""
        link = OutboundLink(capacity=capacity)
        self.connected(link)
        return link

    def send(self, pending: PendingCommand) -> OutboundLink:
        """A new vehicle socket, connected now, and ``pending`` delivered to the desk."""
        link = self.connect()
        self.deliver(pending)
        return link

    def disconnected(self) -> None:
        self.desk.disconnected()
        self.changed.set()

    def lose(self, link: OutboundLink, code: int = 1000, reason: str = "peer closed") -> None:
        """The vehicle socket closes, and the desk hears of it."""
        link.close(code, reason)
        self.disconnected()

    def acknowledged(self, answer: CommandAck) -> bool:
        known = self.desk.acknowledged(answer, trio.current_time())
        self.changed.set()
        return known

    def restore(self, pending: PendingCommand) -> None:
        self.desk.restore(pending)
        self.changed.set()

    async def drive(self) -> None:
        """The control task's loop: tick at the desk's next deadline, look again on change."""
        while True:
            self.changed = trio.Event()
            with trio.move_on_at(self.desk.next_deadline()):
                await self.changed.wait()
                continue
            self.desk.tick(trio.current_time())

    # --- what the test looks at -----------------------------------------------------------

    async def outcome(self, command_id: str) -> CommandStatus:
        """Wait for the command's outcome as a caller of AwaitOutcome gets it."""
        reply: Reply[CommandStatus] = Reply()
        self.desk.await_outcome(command_id, reply)
        with waiting_for(
            f"the outcome of {command_id}", lambda: self.desk.status_of(command_id), WAIT
        ):
            return await reply.wait()
        raise AssertionError("unreachable")

    def settled(self, command_id: str) -> bool:
        """Whether a caller asking now would get the command's outcome at once."""
        status = self.desk.status_of(command_id)
        return status is not None and status.settled

    async def settle(self) -> None:
        """Let the persistence lane run what it was given (no virtual time passes)."""
        await trio.testing.wait_all_tasks_blocked()

    def reports(self) -> list[tuple[str, str, str | None]]:
        """Every ``command_status`` published: (command_id, status, sender session)."""
        found = []
        for vehicle_id, event, session in self.publisher.command_statuses:
            assert vehicle_id == VEHICLE == event["vehicle_id"]
            assert event["type"] == "command_status"
            found.append((event["command_id"], event["status"], session))
        return found

    def statuses(self, command_id: str) -> list[str]:
        return self.publisher.statuses_of(command_id)

    async def writes(self) -> list[StatusWrite]:
        await self.settle()
        return self.store.statuses


async def _persistence_lane(jobs: trio.MemoryReceiveChannel[PersistJob]) -> None:
    async for job in jobs:
        try:
            await job()
        except StorageError as exc:
            logger.error("storage write failed: %s", exc)


@asynccontextmanager
async def open_desk(**options: Any) -> AsyncIterator[Desk]:
    """A desk with its driver and persistence lane running; both stop at the end.

    The whole ``async with`` body runs under a :data:`GUARD` deadline, so a test that waits
    for something that never happens fails instead of hanging.
    """
    publisher, store = RecordingPublisher(), MemoryVehicleStore()
    send_job, receive_job = trio.open_memory_channel[PersistJob](1000)
    desks: list[CommandDesk] = []

    async def notify(command_id: str, status: str) -> None:
        desks[0].status_written(command_id, status)

    desk = CommandDesk(
        VEHICLE,
        publisher=publisher,
        store=store,
        persist=send_job.send_nowait,
        notify=notify,
        **options,
    )
    desks.append(desk)
    harness = Desk(desk, publisher, store, trio.current_time(), trio.Event())
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as actor:
            actor.start_soon(harness.drive)
            actor.start_soon(_persistence_lane, receive_job)
            yield harness
            actor.cancel_scope.cancel()


def command(
    command_id: str,
    kind: str = "dispatch",
    *,
    session: str | None = "session_a",
    created_at: datetime | None = None,
    **fields: Any,
) -> PendingCommand:
    """A command as the VehicleActor hands it to the desk."""
    if kind == "dispatch" and "mission" not in fields:
        fields["mission"] = {
            **copy.deepcopy(DISPATCH_EXAMPLE["mission"]),
            "mission_id": f"mission_{command_id}",
        }
    payload = {"type": kind, "command_id": command_id, "timestamp": TIMESTAMP, **fields}
    queued = QueuedCommand(command_id, kind, payload, created_at or utc_now(), sender="operator_1")
    return PendingCommand(queued, session)


def estop(command_id: str, **options: Any) -> PendingCommand:
    return command(command_id, "emergency_stop", reason="staff_initiated", **options)


def ack(command_id: str, status: str, **fields: Any) -> CommandAck:
    return CommandAck.model_validate(
        {"type": "command_ack", "command_id": command_id, "status": status, **fields}
    )


async def frames_until(link: OutboundLink, desk: Desk, count: int) -> list[tuple[float, str]]:
    """The next ``count`` frames and when each was queued: (time, command_id)."""
    found: list[tuple[float, str]] = []
    with waiting_for(f"{count} frames on the link", lambda: found, WAIT):
        for _ in range(count):
            frame = await link.next_frame()
            found.append((desk.now(), frame["command_id"]))
    return found


def sends_at(command_id: str, *times: float) -> list[tuple[float, str]]:
    """What :func:`frames_until` returns when only ``command_id`` goes out, at ``times``."""
    return [(at, command_id) for at in times]


async def no_frame_within(link: OutboundLink, seconds: float) -> bool:
    with trio.move_on_after(seconds) as scope:
        await link.next_frame()
    return scope.cancelled_caught


# --- connected: send, resend, timeout -------------------------------------------------------


async def test_a_command_for_a_connected_vehicle_is_sent_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        pending = command("cmd_1")
        link = d.send(pending)
        assert await link.next_frame() == pending.queued.payload
        assert d.now() == 0.0
        assert (pending.status, pending.sends) == ("sent", 1)
        assert d.reports() == [("cmd_1", "sent", "session_a")]
        assert d.publisher.command_statuses[0][1]["ack"] is None
        assert d.desk.last_delivered_type == "dispatch"
        assert d.desk.status_of("cmd_1") == CommandStatus("cmd_1", VEHICLE, "sent", None, False)
        assert await d.writes() == [StatusWrite(["cmd_1"], "sent", sends=1, sent=True)]


async def test_no_ack_resends_at_5_and_10_s_then_times_out_at_15_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        pending = command("cmd_1")
        link = d.send(pending)
        assert await frames_until(link, d, 3) == sends_at("cmd_1", 0.0, 5.0, 10.0)
        outcome = await d.outcome("cmd_1")  # answered once the status is recorded
        assert d.now() == 15.0
        assert outcome == CommandStatus("cmd_1", VEHICLE, "timeout", None, True)
        assert (pending.status, pending.sends) == ("timeout", 3)
        assert d.statuses("cmd_1") == ["sent", "timeout"]
        assert not d.desk.knows("cmd_1")
        assert await no_frame_within(link, 60)
        assert await d.writes() == [
            StatusWrite(["cmd_1"], "sent", sends=1, sent=True),
            StatusWrite(["cmd_1"], "sent", sends=2),
            StatusWrite(["cmd_1"], "sent", sends=3),
            StatusWrite(["cmd_1"], "timeout"),
        ]
        assert d.publisher.alerts == []  # only an unconfirmed emergency stop raises one


async def test_the_ack_timer_comes_from_the_desk_options(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk(ack_timeout=2.0, max_sends=2) as d:
        pending = command("cmd_1")
        link = d.send(pending)
        assert await frames_until(link, d, 2) == sends_at("cmd_1", 0.0, 2.0)
        assert (await d.outcome("cmd_1")).status == "timeout"
        assert d.now() == 4.0


async def test_an_ack_after_the_second_send_stops_the_resends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        pending = command("cmd_1")
        link = d.send(pending)
        assert await frames_until(link, d, 2) == sends_at("cmd_1", 0.0, 5.0)
        await d.sleep_until(7)
        answer = ack("cmd_1", "accepted", estimated_arrival=TIMESTAMP)
        assert d.acknowledged(answer)
        await d.settle()  # settled once the status is recorded
        assert d.settled("cmd_1")
        outcome = await d.outcome("cmd_1")
        assert (outcome.status, outcome.ack) == ("accepted", pending.ack)
        assert d.now() == 7.0
        assert pending.ack == {
            "type": "command_ack",
            "command_id": "cmd_1",
            "status": "accepted",
            "estimated_arrival": TIMESTAMP,
        }
        assert await no_frame_within(link, 60)
        assert pending.sends == 2
        assert d.statuses("cmd_1") == ["sent", "accepted"]
        assert d.publisher.command_statuses[-1][1]["ack"] == pending.ack
        writes = await d.writes()
        assert writes[-1] == StatusWrite(["cmd_1"], "accepted", ack=pending.ack)
        assert "timeout" not in [write.status for write in writes]


async def test_a_waiting_caller_is_answered_only_once_the_outcome_is_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.store.delays["set_command_status"] = 2.0  # a slow database
        d.connect()
        d.deliver(command("cmd_1"))  # its "sent" is written from 0 to 2 s
        await d.sleep_until(1)
        d.acknowledged(ack("cmd_1", "accepted"))  # written from 2 to 4 s
        assert not d.settled("cmd_1")
        outcome = await d.outcome("cmd_1")
        assert (d.now(), outcome.status, outcome.settled) == (4.0, "accepted", True)
        assert d.store.statuses[-1] == StatusWrite(["cmd_1"], "accepted", ack=outcome.ack)


async def test_a_waiting_caller_is_answered_even_when_the_outcome_cannot_be_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.store.fail_next(
            "set_command_status",
            1,
            StorageUnavailableError("connection refused"),
            only=lambda ids, status: status == "accepted",
        )
        d.connect()
        d.deliver(command("cmd_1"))
        d.acknowledged(ack("cmd_1", "accepted"))
        outcome = await d.outcome("cmd_1")
        assert (d.now(), outcome.status) == (0.0, "accepted")
        assert [write.status for write in d.store.statuses] == ["sent"]


async def test_an_accepted_dispatch_can_still_report_executed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.connect()
        pending = command("cmd_1")
        d.deliver(pending)
        assert d.acknowledged(ack("cmd_1", "accepted"))
        assert d.desk.knows("cmd_1")
        await d.sleep_until(120)
        assert d.acknowledged(ack("cmd_1", "executed"))
        assert pending.status == "executed"
        assert d.statuses("cmd_1") == ["sent", "accepted", "executed"]
        await d.settle()  # forgotten once the final status is recorded
        assert not d.desk.knows("cmd_1")
        assert (await d.outcome("cmd_1")).status == "executed"  # still answered


async def test_a_repeated_ack_changes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    async with open_desk() as d:
        link = d.connect()
        dispatch, stop = command("cmd_1"), estop("cmd_ESTOP_1")
        d.deliver(dispatch)
        d.deliver(stop)
        assert d.acknowledged(ack("cmd_1", "accepted"))
        assert d.acknowledged(ack("cmd_1", "accepted"))
        d.acknowledged(ack("cmd_ESTOP_1", "executed"))
        d.acknowledged(ack("cmd_ESTOP_1", "executed"))
        await d.settle()
        writes_before = list(d.store.statuses)
        d.acknowledged(ack("cmd_ESTOP_1", "executed"))
        assert d.statuses("cmd_1") == ["sent", "accepted"]
        assert d.statuses("cmd_ESTOP_1") == ["sent", "executed"]
        assert (dispatch.status, stop.status) == ("accepted", "executed")
        assert await d.writes() == writes_before
        await d.sleep_until(60)  # and no timer wakes up to resend or time out
        assert d.statuses("cmd_1") == ["sent", "accepted"]
        assert d.statuses("cmd_ESTOP_1") == ["sent", "executed"]
        assert [(await link.next_frame())["command_id"] for _ in range(2)] == [
            "cmd_ESTOP_1",
            "cmd_1",
        ]
        assert link.depth() == 0


async def test_an_ack_for_an_unknown_command_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.connect()
        d.deliver(command("cmd_1"))
        assert d.acknowledged(ack("cmd_other", "accepted")) is False
        assert d.statuses("cmd_other") == []
        assert d.statuses("cmd_1") == ["sent"]


async def test_an_unconfirmed_emergency_stop_raises_a_critical_alert(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        stop = estop("cmd_ESTOP_1")
        link = d.send(stop)
        assert await frames_until(link, d, 3) == sends_at("cmd_ESTOP_1", 0.0, 5.0, 10.0)
        assert (await d.outcome("cmd_ESTOP_1")).status == "timeout"
        assert d.now() == 15.0
        [alert] = d.publisher.alerts
        assert alert["type"] == "alert"
        assert alert["vehicle_id"] == VEHICLE
        assert alert["severity"] == "critical"
        assert alert["kind"] == "emergency_stop_unconfirmed"
        assert "cmd_ESTOP_1" in alert["message"]
        await d.settle()
        [(vehicle_id, alert_id, draft)] = d.store.raised
        assert (vehicle_id, draft.severity, draft.kind) == (
            VEHICLE,
            "critical",
            "emergency_stop_unconfirmed",
        )
        assert alert_id == alert["alert_id"]
        [result] = [landed.value for landed in d.store.audits]
        assert result == AuditEntry(
            "emergency_stop_result",
            None,
            None,
            VEHICLE,
            "timeout",
            {"command_id": "cmd_ESTOP_1", "ack": None},
        )


async def test_a_confirmed_emergency_stop_raises_no_alert(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        stop = estop("cmd_ESTOP_1")
        link = d.send(stop)
        assert await frames_until(link, d, 3) == sends_at("cmd_ESTOP_1", 0.0, 5.0, 10.0)
        await d.sleep_until(14.5)
        d.acknowledged(ack("cmd_ESTOP_1", "executed", stopped_at=TIMESTAMP))
        await d.sleep_until(60)
        assert stop.status == "executed"
        assert d.publisher.alerts == []
        await d.settle()
        assert d.store.raised == []
        [result] = [landed.value for landed in d.store.audits]
        assert (result.action, result.outcome) == ("emergency_stop_result", "executed")
        assert result.details["ack"]["stopped_at"] == TIMESTAMP


async def test_an_emergency_stop_overtakes_frames_already_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        link = d.connect()
        d.deliver(command("cmd_1"))
        d.deliver(command("cmd_2", "configure", config_updates={"max_speed": 0.8}))
        d.deliver(estop("cmd_ESTOP_1"))
        assert await frames_until(link, d, 3) == [
            (0.0, "cmd_ESTOP_1"),
            (0.0, "cmd_1"),
            (0.0, "cmd_2"),
        ]
        # The stop's resend overtakes the others too (timers that fire at the same
        # instant resend in no particular order among themselves).
        resent = await frames_until(link, d, 3)
        assert resent[0] == (5.0, "cmd_ESTOP_1")
        assert sorted(resent[1:]) == [(5.0, "cmd_1"), (5.0, "cmd_2")]
        assert d.desk.last_delivered_type == "emergency_stop"


@pytest.mark.parametrize(
    ("kind", "answer", "mission_status"),
    [
        ("dispatch", "accepted", "accepted"),
        ("dispatch", "rejected", "rejected"),
        ("dispatch", "executed", "completed"),
        ("cancel", "accepted", "cancelled"),
        ("cancel", "executed", "cancelled"),
    ],
)
async def test_acks_move_the_mission_along(
    autojump_clock: trio.testing.MockClock, kind: str, answer: str, mission_status: str
) -> None:
    async with open_desk() as d:
        d.connect()
        fields: dict[str, Any] = {}
        if kind == "cancel":
            fields = {"mission_id": "mission_9", "reason": "user_requested"}
        else:
            fields = {
                "mission": {**command("x").queued.payload["mission"], "mission_id": "mission_9"}
            }
        d.deliver(command("cmd_1", kind, **fields))
        d.acknowledged(ack("cmd_1", answer))
        await d.settle()
        assert d.store.missions == [("mission_9", mission_status)]


async def test_a_dispatch_that_times_out_fails_its_mission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.connect()
        pending = command("cmd_1")
        d.deliver(pending)
        assert (await d.outcome("cmd_1")).status == "timeout"
        await d.settle()
        assert d.store.missions == [("mission_cmd_1", "failed")]


async def test_a_configure_ack_does_not_touch_missions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        d.connect()
        d.deliver(command("cmd_1", "configure", config_updates={"audio_volume": 10}))
        d.acknowledged(ack("cmd_1", "applied", updated_config={"audio_volume": 10}))
        await d.settle()
        assert d.store.missions == []
        assert d.statuses("cmd_1") == ["sent", "applied"]


# --- offline: queue, drop, merge, expire ----------------------------------------------------


async def test_a_command_for_an_offline_vehicle_is_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        pending = command("cmd_1")
        d.deliver(pending)
        assert pending.status == "queued"
        assert not d.settled("cmd_1")
        assert d.reports() == [("cmd_1", "queued", "session_a")]
        assert await d.writes() == [StatusWrite(["cmd_1"], "queued")]
        assert d.desk.knows("cmd_1")
        assert d.desk.describe() == {"queue_depth": 1, "commands_in_flight": 0}
        await d.sleep_until(60)  # nothing times out while queued
        assert d.statuses("cmd_1") == ["queued"]


async def test_the_101st_queued_command_drops_the_oldest_and_tells_its_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        commands = [command(f"cmd_{n}", session=f"session_{n}") for n in range(101)]
        for pending in commands:
            d.deliver(pending)
        oldest = commands[0]
        assert oldest.status == "dropped"
        await d.settle()  # settled once the status is recorded
        assert d.settled("cmd_0")
        assert (await d.outcome("cmd_0")).status == "dropped"
        assert ("cmd_0", "dropped", "session_0") in d.reports()
        assert d.statuses("cmd_0") == ["queued", "dropped"]
        assert not d.desk.knows("cmd_0")
        assert all(p.status == "queued" for p in commands[1:])
        assert len(d.desk.queue) == 100
        writes = await d.writes()
        assert StatusWrite(["cmd_0"], "dropped") in writes
        assert ("mission_cmd_0", "failed") in d.store.missions
        link = d.connect(capacity=1000)
        sent = await frames_until(link, d, 100)
        assert [command_id for _, command_id in sent] == [f"cmd_{n}" for n in range(1, 101)]


async def test_two_queued_configures_take_one_slot_and_share_the_final_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        first = command(
            "cmd_cfg_1",
            "configure",
            session="session_a",
            config_updates={"max_speed": 0.5, "audio_volume": 40},
        )
        second = command(
            "cmd_cfg_2",
            "configure",
            session="session_b",
            config_updates={"max_speed": 0.8, "ehmi_language": "ja"},
        )
        d.deliver(first)
        d.deliver(second)
        assert len(d.desk.queue) == 1
        assert d.desk.knows("cmd_cfg_1") and d.desk.knows("cmd_cfg_2")

        link = d.connect()
        frame = await link.next_frame()
        assert frame["command_id"] == "cmd_cfg_2"
        assert frame["config_updates"] == {
            "max_speed": 0.8,
            "audio_volume": 40,
            "ehmi_language": "ja",
        }
        assert await no_frame_within(link, 1)

        d.acknowledged(ack("cmd_cfg_2", "applied"))
        assert d.statuses("cmd_cfg_1")[-1] == "applied"
        assert d.statuses("cmd_cfg_2")[-1] == "applied"
        # Each sender hears about its own command.
        assert ("cmd_cfg_1", "applied", "session_a") in d.reports()
        assert ("cmd_cfg_2", "applied", "session_b") in d.reports()
        assert (first.status, second.status) == ("applied", "applied")
        await d.settle()  # settled once the status is recorded
        for command_id in ("cmd_cfg_1", "cmd_cfg_2"):
            outcome = await d.outcome(command_id)
            assert (outcome.command_id, outcome.status) == (command_id, "applied")
        assert not d.desk.knows("cmd_cfg_1") and not d.desk.knows("cmd_cfg_2")
        writes = await d.writes()
        assert writes[-1].status == "applied"
        assert sorted(writes[-1].command_ids) == ["cmd_cfg_1", "cmd_cfg_2"]


async def test_every_sender_of_a_chain_of_merged_configures_hears_the_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        configures = [
            command(
                f"cmd_cfg_{n}",
                "configure",
                session=f"session_{n}",
                config_updates={"audio_volume": n * 10},
            )
            for n in (1, 2, 3)
        ]
        for pending in configures:
            d.deliver(pending)
        assert len(d.desk.queue) == 1
        link = d.connect()
        frame = await link.next_frame()
        assert (frame["command_id"], frame["config_updates"]) == (
            "cmd_cfg_3",
            {"audio_volume": 30},
        )
        assert await no_frame_within(link, 1)
        d.acknowledged(ack("cmd_cfg_3", "applied"))
        final = [report for report in d.reports() if report[1] == "applied"]
        assert sorted(final) == [
            ("cmd_cfg_1", "applied", "session_1"),
            ("cmd_cfg_2", "applied", "session_2"),
            ("cmd_cfg_3", "applied", "session_3"),
        ]
        assert [p.status for p in configures] == ["applied"] * 3
        await d.settle()  # settled once the status is recorded
        assert all(d.settled(p.command_id) for p in configures)


async def test_commands_older_than_the_ttl_expire_and_the_rest_go_out_stops_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        long_ago = utc_now() - timedelta(minutes=11)
        stale = command("cmd_old", created_at=long_ago)
        stale_stop = estop("cmd_ESTOP_old", created_at=long_ago)
        fresh = [command("cmd_1"), command("cmd_2", "resume"), command("cmd_3")]
        stop = estop("cmd_ESTOP_1")
        d.deliver(stale)
        d.deliver(fresh[0])
        d.deliver(stale_stop)
        d.deliver(fresh[1])
        d.deliver(stop)
        d.deliver(fresh[2])

        link = d.connect()
        assert stale.status == "expired"
        await d.settle()  # settled once the status is recorded
        assert (await d.outcome("cmd_old")).status == "expired"
        assert d.statuses("cmd_old") == ["queued", "expired"]
        assert ("cmd_old", "expired", "session_a") in d.reports()
        sent = await frames_until(link, d, 5)
        assert sent == [
            (0.0, "cmd_ESTOP_old"),
            (0.0, "cmd_ESTOP_1"),
            (0.0, "cmd_1"),
            (0.0, "cmd_2"),
            (0.0, "cmd_3"),
        ]
        assert await no_frame_within(link, 1)
        assert all(p.status == "sent" for p in [*fresh, stop, stale_stop])
        writes = await d.writes()
        assert StatusWrite(["cmd_old"], "expired") in writes
        assert ("mission_cmd_old", "failed") in d.store.missions


async def test_a_command_awaiting_its_ack_goes_back_to_the_head_of_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        in_flight = command("cmd_1")
        first_link = d.send(in_flight)
        assert await frames_until(first_link, d, 1) == sends_at("cmd_1", 0.0)

        await d.sleep_until(2)
        d.lose(first_link)
        assert (in_flight.status, in_flight.sends) == ("queued", 0)
        assert d.statuses("cmd_1") == ["sent", "queued"]
        later = command("cmd_2")
        d.deliver(later)
        assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_1", "cmd_2"]

        await d.sleep_until(30)  # the first link's timer would have fired at 5, 10, 15
        assert d.statuses("cmd_1") == ["sent", "queued"]
        assert not d.settled("cmd_1")

        second_link = d.connect()
        assert await frames_until(second_link, d, 2) == [(30.0, "cmd_1"), (30.0, "cmd_2")]
        resent = await frames_until(second_link, d, 2)  # same instant: in any order
        assert sorted(resent) == [(35.0, "cmd_1"), (35.0, "cmd_2")]
        assert (await d.outcome("cmd_1")).status == "timeout"
        assert d.now() == 45.0
        assert in_flight.sends == 3
        assert d.statuses("cmd_1") == ["sent", "queued", "sent", "timeout"]
        writes = await d.writes()
        assert StatusWrite(["cmd_1"], "queued") in writes


async def test_a_quick_reconnect_restarts_the_ack_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Replaced at 3 s: the first link's timer (due at 5 s) must neither resend on the new
    # link nor count its sends; the new link's timer resends at 8 and 13, times out at 18.
    async with open_desk() as d:
        pending = command("cmd_1")
        first_link = d.send(pending)
        await first_link.next_frame()
        await d.sleep_until(3)
        d.lose(first_link, 4009, "replaced")
        second_link = d.connect()
        assert await frames_until(second_link, d, 3) == sends_at("cmd_1", 3.0, 8.0, 13.0)
        assert (await d.outcome("cmd_1")).status == "timeout"
        assert d.now() == 18.0
        assert d.statuses("cmd_1") == ["sent", "queued", "sent", "timeout"]


async def test_a_link_closed_before_the_desk_hears_of_it_times_nothing_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        pending = command("cmd_1")
        link = d.send(pending)
        link.close(4008, "heartbeat_timeout")
        await d.sleep_until(20)
        assert pending.status == "sent"
        assert d.statuses("cmd_1") == ["sent"]
        # A command arriving meanwhile is queued, behind the one that was in flight.
        d.deliver(command("cmd_2"))
        assert d.statuses("cmd_2") == ["queued"]
        d.disconnected()
        assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_1", "cmd_2"]


async def test_an_unacknowledged_stop_goes_back_ahead_of_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        link = d.connect()
        d.deliver(command("cmd_1"))
        d.deliver(estop("cmd_ESTOP_1"))
        d.acknowledged(ack("cmd_1", "accepted"))
        d.lose(link)
        d.deliver(command("cmd_2"))
        assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_ESTOP_1", "cmd_2"]
        assert d.desk.describe() == {"queue_depth": 2, "commands_in_flight": 0}


async def test_a_restored_command_is_delivered_on_connect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_desk() as d:
        restored = command("cmd_1", session=None)
        d.restore(restored)
        assert d.reports() == []
        link = d.connect()
        assert await frames_until(link, d, 1) == sends_at("cmd_1", 0.0)
        assert d.reports() == [("cmd_1", "sent", None)]
        assert d.desk.describe() == {"queue_depth": 0, "commands_in_flight": 1}


# --- resume rule (CONTRACT §6.3) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_state", "last_delivered", "allowed"),
    [
        ("emergency_stop", None, True),
        ("emergency_stop", "dispatch", True),
        ("idle", "emergency_stop", True),
        (None, "emergency_stop", True),
        ("idle", "dispatch", False),
        ("error", "resume", False),
        (None, None, False),
    ],
)
def test_resume_only_after_an_emergency_stop(
    last_state: str | None, last_delivered: str | None, allowed: bool
) -> None:
    assert resume_allowed(last_state, last_delivered) is allowed
