"""CommandDesk (CONTRACT §6.3): send, 5 s ack timeout, 3 sends, statuses, offline queue.

The desk is built directly: a RecordingSink sees every ``command_status`` and alert, a fake
StatusStore records what the persistence lane would write, and ``persist`` keeps the jobs
until the test runs them in order (so a test also sees that nothing waits on storage).
Ack timers run in a nursery of the test, on the autojump clock; times are virtual seconds
since the start of the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from actors.alerts import rules as alert_rules
from actors.events import RecordingSink
from actors.sockets.outbound import OutboundLink
from actors.vehicle.actor import resume_allowed
from actors.vehicle.command_desk import CommandDesk, PendingCommand, PersistJob, StatusStore
from actors.vehicle.offline_queue import QueuedCommand
from hub.clock import utc_now
from hub.contract.command_acks import CommandAck

VEHICLE = "wheelchair_001"
GUARD = 600.0  # virtual seconds under autojump_clock
TIMESTAMP = "2025-12-16T10:30:45.123Z"


# --- fakes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusWrite:
    command_ids: list[str]
    status: str
    sends: int | None = None
    ack: dict[str, Any] | None = None
    sent: bool = False


class FakeStatusStore(StatusStore):
    """Keeps what the desk asks to be written."""

    def __init__(self) -> None:
        self.writes: list[StatusWrite] = []
        self.alerts: list[tuple[str, alert_rules.AlertDraft, str]] = []
        self.missions: list[tuple[str, str]] = []
        self.stop_results: list[tuple[str, str]] = []

    async def set_status(
        self,
        command_ids: list[str],
        status: str,
        *,
        sends: int | None = None,
        ack: dict[str, Any] | None = None,
        sent: bool = False,
    ) -> None:
        self.writes.append(StatusWrite(list(command_ids), status, sends, ack, sent))

    async def raise_alert(
        self, vehicle_id: str, draft: alert_rules.AlertDraft, alert_id: str
    ) -> None:
        self.alerts.append((vehicle_id, draft, alert_id))

    async def mission_status(self, mission_id: str, status: str) -> None:
        self.missions.append((mission_id, status))

    async def stop_result(self, command_id: str, status: str, ack: dict[str, Any] | None) -> None:
        self.stop_results.append((command_id, status))


class PersistLane:
    """``persist``: runs jobs in order in the background, as the actor's lane does."""

    def __init__(self) -> None:
        self.waiting: list[PersistJob] = []
        self._wakeup = trio.Event()

    def __call__(self, job: PersistJob) -> None:
        self.waiting.append(job)
        self._wakeup.set()

    async def run(self) -> None:
        """Run what is waiting now (and wait for it)."""
        while self.waiting:
            await self.waiting.pop(0)()

    async def serve(self) -> None:
        """Run jobs as they come, until cancelled."""
        while True:
            await self.run()
            self._wakeup = trio.Event()
            await self._wakeup.wait()


@dataclass
class Desk:
    desk: CommandDesk
    sink: RecordingSink
    store: FakeStatusStore
    lane: PersistLane
    start: float

    def now(self) -> float:
        return trio.current_time() - self.start

    async def sleep_until(self, at: float) -> None:
        await trio.sleep_until(self.start + at)

    def reports(self) -> list[tuple[str, str, str | None]]:
        """Every ``command_status`` published: (command_id, status, sender session)."""
        found = []
        for vehicle_id, event, session in self.sink.command_statuses:
            assert vehicle_id == VEHICLE == event["vehicle_id"]
            assert event["type"] == "command_status"
            found.append((event["command_id"], event["status"], session))
        return found

    def statuses(self, command_id: str) -> list[str]:
        return [status for cid, status, _ in self.reports() if cid == command_id]

    async def writes(self) -> list[StatusWrite]:
        await self.lane.run()
        return self.store.writes


@asynccontextmanager
async def open_desk(**options: Any) -> AsyncIterator[Desk]:
    """A desk bound to a nursery for its ack timers; the timers are cancelled at the end."""
    sink = RecordingSink()
    store = FakeStatusStore()
    lane = PersistLane()
    desk = CommandDesk(VEHICLE, sink=sink, store=store, persist=lane, **options)
    async with trio.open_nursery() as timers:
        desk.bind(timers)
        timers.start_soon(lane.serve)
        yield Desk(desk, sink, store, lane, trio.current_time())
        timers.cancel_scope.cancel()


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
            "mission_id": f"mission_{command_id}",
            "pickup": {
                "waypoint_id": "lobby",
                "latitude": 35.6811,
                "longitude": 139.767,
                "action": "dock_wheelchair",
            },
            "destination": {
                "waypoint_id": "room_201",
                "latitude": 35.682456,
                "longitude": 139.768234,
                "action": "undock_wheelchair",
            },
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
    found = []
    for _ in range(count):
        frame = await link.next_frame()
        found.append((desk.now(), frame["command_id"]))
    return found


async def no_frame_within(link: OutboundLink, seconds: float) -> bool:
    with trio.move_on_after(seconds) as scope:
        await link.next_frame()
    return scope.cancelled_caught


# --- connected: send, resend, timeout -------------------------------------------------------


async def test_a_command_for_a_connected_vehicle_is_sent_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert await link.next_frame() == pending.queued.payload
            assert d.now() == 0.0
            assert (pending.status, pending.sends) == ("sent", 1)
            assert d.reports() == [("cmd_1", "sent", "session_a")]
            assert d.sink.command_statuses[0][1]["ack"] is None
            assert d.desk.last_delivered_type == "dispatch"
            assert await d.writes() == [StatusWrite(["cmd_1"], "sent", sends=1, sent=True)]


async def test_no_ack_resends_at_5_and_10_s_then_times_out_at_15_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert await frames_until(link, d, 3) == [
                (0.0, "cmd_1"),
                (5.0, "cmd_1"),
                (10.0, "cmd_1"),
            ]
            await pending.outcome()
            assert d.now() == 15.0
            assert (pending.status, pending.sends) == ("timeout", 3)
            await d.lane.run()  # settled once the status is recorded
            assert pending.settled.is_set()
            assert d.statuses("cmd_1") == ["sent", "timeout"]
            assert not d.desk.knows("cmd_1")
            assert await no_frame_within(link, 60)
            assert await d.writes() == [
                StatusWrite(["cmd_1"], "sent", sends=1, sent=True),
                StatusWrite(["cmd_1"], "sent", sends=2),
                StatusWrite(["cmd_1"], "sent", sends=3),
                StatusWrite(["cmd_1"], "timeout"),
            ]
            assert d.sink.alerts == []  # only an unconfirmed emergency stop raises one


async def test_the_ack_timer_comes_from_the_desk_options(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk(ack_timeout=2.0, max_sends=2) as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert await frames_until(link, d, 2) == [(0.0, "cmd_1"), (2.0, "cmd_1")]
            assert await pending.outcome() == "timeout"
            assert d.now() == 4.0


async def test_an_ack_after_the_second_send_stops_the_resends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert await frames_until(link, d, 2) == [(0.0, "cmd_1"), (5.0, "cmd_1")]
            await d.sleep_until(7)
            answer = ack("cmd_1", "accepted", estimated_arrival=TIMESTAMP)
            assert d.desk.acknowledged(answer)
            await d.lane.run()  # settled once the status is recorded
            assert pending.settled.is_set()
            assert await pending.outcome() == "accepted"
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
            assert d.sink.command_statuses[-1][1]["ack"] == pending.ack
            writes = await d.writes()
            assert writes[-1] == StatusWrite(["cmd_1"], "accepted", ack=pending.ack)
            assert "timeout" not in [write.status for write in writes]


async def test_an_accepted_dispatch_can_still_report_executed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert d.desk.acknowledged(ack("cmd_1", "accepted"))
            assert d.desk.knows("cmd_1")
            await d.sleep_until(120)
            assert d.desk.acknowledged(ack("cmd_1", "executed"))
            assert pending.status == "executed"
            assert d.statuses("cmd_1") == ["sent", "accepted", "executed"]
            assert not d.desk.knows("cmd_1")


async def test_a_repeated_ack_changes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            dispatch, stop = command("cmd_1"), estop("cmd_ESTOP_1")
            d.desk.deliver(dispatch)
            d.desk.deliver(stop)
            assert d.desk.acknowledged(ack("cmd_1", "accepted"))
            assert d.desk.acknowledged(ack("cmd_1", "accepted"))
            d.desk.acknowledged(ack("cmd_ESTOP_1", "executed"))
            d.desk.acknowledged(ack("cmd_ESTOP_1", "executed"))
            await d.lane.run()
            writes_before = list(d.store.writes)
            d.desk.acknowledged(ack("cmd_ESTOP_1", "executed"))
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
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            d.desk.connected(OutboundLink())
            d.desk.deliver(command("cmd_1"))
            assert d.desk.acknowledged(ack("cmd_other", "accepted")) is False
            assert d.statuses("cmd_other") == []
            assert d.statuses("cmd_1") == ["sent"]


async def test_an_unconfirmed_emergency_stop_raises_a_critical_alert(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            stop = estop("cmd_ESTOP_1")
            d.desk.deliver(stop)
            assert await frames_until(link, d, 3) == [
                (0.0, "cmd_ESTOP_1"),
                (5.0, "cmd_ESTOP_1"),
                (10.0, "cmd_ESTOP_1"),
            ]
            assert await stop.outcome() == "timeout"
            assert d.now() == 15.0
            [alert] = d.sink.alerts
            assert alert["type"] == "alert"
            assert alert["vehicle_id"] == VEHICLE
            assert alert["severity"] == "critical"
            assert alert["kind"] == "emergency_stop_unconfirmed"
            assert "cmd_ESTOP_1" in alert["message"]
            await d.lane.run()
            [(vehicle_id, draft, alert_id)] = d.store.alerts
            assert (vehicle_id, draft.severity, draft.kind) == (
                VEHICLE,
                "critical",
                "emergency_stop_unconfirmed",
            )
            assert alert_id == alert["alert_id"]


async def test_a_confirmed_emergency_stop_raises_no_alert(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            stop = estop("cmd_ESTOP_1")
            d.desk.deliver(stop)
            assert await frames_until(link, d, 3) == [
                (0.0, "cmd_ESTOP_1"),
                (5.0, "cmd_ESTOP_1"),
                (10.0, "cmd_ESTOP_1"),
            ]
            await d.sleep_until(14.5)
            d.desk.acknowledged(ack("cmd_ESTOP_1", "executed", stopped_at=TIMESTAMP))
            await d.sleep_until(60)
            assert stop.status == "executed"
            assert d.sink.alerts == []
            await d.lane.run()
            assert d.store.alerts == []


async def test_an_emergency_stop_overtakes_frames_already_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            d.desk.deliver(command("cmd_1"))
            d.desk.deliver(command("cmd_2", "configure", config_updates={"max_speed": 0.8}))
            d.desk.deliver(estop("cmd_ESTOP_1"))
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
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            d.desk.connected(OutboundLink())
            fields: dict[str, Any] = {}
            if kind == "cancel":
                fields = {"mission_id": "mission_9", "reason": "user_requested"}
            else:
                fields = {
                    "mission": {**command("x").queued.payload["mission"], "mission_id": "mission_9"}
                }
            d.desk.deliver(command("cmd_1", kind, **fields))
            d.desk.acknowledged(ack("cmd_1", answer))
            await d.lane.run()
            assert d.store.missions == [("mission_9", mission_status)]


async def test_a_dispatch_that_times_out_fails_its_mission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            d.desk.connected(OutboundLink())
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert await pending.outcome() == "timeout"
            await d.lane.run()
            assert d.store.missions == [("mission_cmd_1", "failed")]


async def test_a_configure_ack_does_not_touch_missions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            d.desk.connected(OutboundLink())
            d.desk.deliver(command("cmd_1", "configure", config_updates={"audio_volume": 10}))
            d.desk.acknowledged(ack("cmd_1", "applied", updated_config={"audio_volume": 10}))
            await d.lane.run()
            assert d.store.missions == []
            assert d.statuses("cmd_1") == ["sent", "applied"]


# --- offline: queue, drop, merge, expire ----------------------------------------------------


async def test_a_command_for_an_offline_vehicle_is_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            pending = command("cmd_1")
            d.desk.deliver(pending)
            assert pending.status == "queued"
            assert not pending.settled.is_set()
            assert d.reports() == [("cmd_1", "queued", "session_a")]
            assert await d.writes() == [StatusWrite(["cmd_1"], "queued")]
            assert d.desk.knows("cmd_1")
            assert d.desk.describe() == {"queue_depth": 1, "commands_in_flight": 0}
            await d.sleep_until(60)  # nothing times out while queued
            assert d.statuses("cmd_1") == ["queued"]


async def test_the_101st_queued_command_drops_the_oldest_and_tells_its_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            commands = [command(f"cmd_{n}", session=f"session_{n}") for n in range(101)]
            for pending in commands:
                d.desk.deliver(pending)
            oldest = commands[0]
            assert oldest.status == "dropped"
            await d.lane.run()  # settled once the status is recorded
            assert oldest.settled.is_set()
            assert ("cmd_0", "dropped", "session_0") in d.reports()
            assert d.statuses("cmd_0") == ["queued", "dropped"]
            assert not d.desk.knows("cmd_0")
            assert all(p.status == "queued" for p in commands[1:])
            assert len(d.desk.queue) == 100
            writes = await d.writes()
            assert StatusWrite(["cmd_0"], "dropped") in writes
            assert ("mission_cmd_0", "failed") in d.store.missions
            link = OutboundLink(capacity=1000)
            d.desk.connected(link)
            sent = await frames_until(link, d, 100)
            assert [command_id for _, command_id in sent] == [f"cmd_{n}" for n in range(1, 101)]


async def test_two_queued_configures_take_one_slot_and_share_the_final_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
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
            d.desk.deliver(first)
            d.desk.deliver(second)
            assert len(d.desk.queue) == 1
            assert d.desk.knows("cmd_cfg_1") and d.desk.knows("cmd_cfg_2")

            link = OutboundLink()
            d.desk.connected(link)
            frame = await link.next_frame()
            assert frame["command_id"] == "cmd_cfg_2"
            assert frame["config_updates"] == {
                "max_speed": 0.8,
                "audio_volume": 40,
                "ehmi_language": "ja",
            }
            assert await no_frame_within(link, 1)

            d.desk.acknowledged(ack("cmd_cfg_2", "applied"))
            assert d.statuses("cmd_cfg_1")[-1] == "applied"
            assert d.statuses("cmd_cfg_2")[-1] == "applied"
            # Each sender hears about its own command.
            assert ("cmd_cfg_1", "applied", "session_a") in d.reports()
            assert ("cmd_cfg_2", "applied", "session_b") in d.reports()
            assert (first.status, second.status) == ("applied", "applied")
            await d.lane.run()  # settled once the status is recorded
            assert first.settled.is_set() and second.settled.is_set()
            assert not d.desk.knows("cmd_cfg_1") and not d.desk.knows("cmd_cfg_2")
            writes = await d.writes()
            assert writes[-1].status == "applied"
            assert sorted(writes[-1].command_ids) == ["cmd_cfg_1", "cmd_cfg_2"]


async def test_every_sender_of_a_chain_of_merged_configures_hears_the_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
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
                d.desk.deliver(pending)
            assert len(d.desk.queue) == 1
            link = OutboundLink()
            d.desk.connected(link)
            frame = await link.next_frame()
            assert (frame["command_id"], frame["config_updates"]) == (
                "cmd_cfg_3",
                {"audio_volume": 30},
            )
            assert await no_frame_within(link, 1)
            d.desk.acknowledged(ack("cmd_cfg_3", "applied"))
            final = [report for report in d.reports() if report[1] == "applied"]
            assert sorted(final) == [
                ("cmd_cfg_1", "applied", "session_1"),
                ("cmd_cfg_2", "applied", "session_2"),
                ("cmd_cfg_3", "applied", "session_3"),
            ]
            assert [p.status for p in configures] == ["applied"] * 3
            await d.lane.run()  # settled once the status is recorded
            assert all(p.settled.is_set() for p in configures)


async def test_commands_older_than_the_ttl_expire_and_the_rest_go_out_stops_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            long_ago = utc_now() - timedelta(minutes=11)
            stale = command("cmd_old", created_at=long_ago)
            stale_stop = estop("cmd_ESTOP_old", created_at=long_ago)
            fresh = [command("cmd_1"), command("cmd_2", "resume"), command("cmd_3")]
            stop = estop("cmd_ESTOP_1")
            d.desk.deliver(stale)
            d.desk.deliver(fresh[0])
            d.desk.deliver(stale_stop)
            d.desk.deliver(fresh[1])
            d.desk.deliver(stop)
            d.desk.deliver(fresh[2])

            link = OutboundLink()
            d.desk.connected(link)
            assert stale.status == "expired"
            await d.lane.run()  # settled once the status is recorded
            assert stale.settled.is_set()
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
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            first_link = OutboundLink()
            d.desk.connected(first_link)
            in_flight = command("cmd_1")
            d.desk.deliver(in_flight)
            assert await frames_until(first_link, d, 1) == [(0.0, "cmd_1")]

            await d.sleep_until(2)
            first_link.close(1000, "peer closed")
            d.desk.disconnected()
            assert (in_flight.status, in_flight.sends) == ("queued", 0)
            assert d.statuses("cmd_1") == ["sent", "queued"]
            later = command("cmd_2")
            d.desk.deliver(later)
            assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_1", "cmd_2"]

            await d.sleep_until(30)  # the first link's timer would have fired at 5, 10, 15
            assert d.statuses("cmd_1") == ["sent", "queued"]
            assert not in_flight.settled.is_set()

            second_link = OutboundLink()
            d.desk.connected(second_link)
            assert await frames_until(second_link, d, 2) == [(30.0, "cmd_1"), (30.0, "cmd_2")]
            resent = await frames_until(second_link, d, 2)  # same instant: in any order
            assert sorted(resent) == [(35.0, "cmd_1"), (35.0, "cmd_2")]
            assert await in_flight.outcome() == "timeout"
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
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            first_link = OutboundLink()
            d.desk.connected(first_link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            await first_link.next_frame()
            await d.sleep_until(3)
            first_link.close(4009, "replaced")
            d.desk.disconnected()
            second_link = OutboundLink()
            d.desk.connected(second_link)
            assert await frames_until(second_link, d, 3) == [
                (3.0, "cmd_1"),
                (8.0, "cmd_1"),
                (13.0, "cmd_1"),
            ]
            assert await pending.outcome() == "timeout"
            assert d.now() == 18.0
            assert d.statuses("cmd_1") == ["sent", "queued", "sent", "timeout"]


async def test_a_link_closed_before_the_desk_hears_of_it_times_nothing_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            pending = command("cmd_1")
            d.desk.deliver(pending)
            link.close(4008, "heartbeat_timeout")
            await d.sleep_until(20)
            assert pending.status == "sent"
            assert d.statuses("cmd_1") == ["sent"]
            # A command arriving meanwhile is queued, behind the one that was in flight.
            d.desk.deliver(command("cmd_2"))
            assert d.statuses("cmd_2") == ["queued"]
            d.desk.disconnected()
            assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_1", "cmd_2"]


async def test_an_unacknowledged_stop_goes_back_ahead_of_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            link = OutboundLink()
            d.desk.connected(link)
            d.desk.deliver(command("cmd_1"))
            d.desk.deliver(estop("cmd_ESTOP_1"))
            d.desk.acknowledged(ack("cmd_1", "accepted"))
            link.close(1000, "peer closed")
            d.desk.disconnected()
            d.desk.deliver(command("cmd_2"))
            assert [c.command_id for c in d.desk.queue.commands()] == ["cmd_ESTOP_1", "cmd_2"]
            assert d.desk.describe() == {"queue_depth": 2, "commands_in_flight": 0}


async def test_a_restored_command_is_delivered_on_connect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_desk() as d:
            restored = command("cmd_1", session=None)
            d.desk.restore(restored)
            assert d.reports() == []
            link = OutboundLink()
            d.desk.connected(link)
            assert await frames_until(link, d, 1) == [(0.0, "cmd_1")]
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
