"""SessionActor with a real Router, a fake vehicle directory and a fake snapshot (CONTRACT §6.2).

Frames go in through :func:`frame_handler` (as from ``run_socket``'s reader) and come out of
the session's link queue, as the socket writer takes them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from actors.router.actor import (
    RouterState,
)
from actors.router.sink import RouterSink, start_router
from actors.session.actor import (
    SESSION_KIND,
    Inbound,
    SessionActor,
    SessionIdentity,
    SessionMessage,
    frame_handler,
)
from actors.session.conflation import SessionLink
from actors.sockets.connection import FrameHandler
from actors.sockets.encoded import frame_dict
from actors.vehicle.messages import CommandOrigin, CommandStatus
from hub.contract import ws_events
from hub.contract.commands import AnyCommand
from hub.errors import ConflictError, ContractError, UnavailableError, UnknownVehicleError
from hub.runtime import ActorRef, Registry
from hub.runtime.testing import open_registry
from tests.unit.fakes import closed_with

GUARD = 600.0  # virtual seconds: every test runs on autojump_clock
SESSION = "sess_0123456789abcdef"
TIMESTAMP = "2025-12-16T10:30:45.123Z"


class FakeSnapshot:
    """Snapshot rows ``{"vehicle_id", "state"}``; records each call; can be slow or fail."""

    def __init__(self, *, delay: float = 0.0, error: ContractError | None = None) -> None:
        self.calls: list[list[str] | None] = []
        self.delay = delay
        self.error = error

    async def __call__(self, vehicle_ids: list[str] | None) -> list[dict[str, Any]]:
        self.calls.append(vehicle_ids)
        await trio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        ids = vehicle_ids if vehicle_ids is not None else ["v1", "v2"]
        return [{"vehicle_id": vehicle_id, "state": "idle"} for vehicle_id in ids]


class FakeDirectory:
    """Takes commands; refuses them with ``error``; ``hold`` keeps non-stop commands waiting."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, AnyCommand, CommandOrigin]] = []
        self.error: ContractError | None = None
        self.hold: trio.Event | None = None

    async def send_command(
        self, vehicle_id: str, command: AnyCommand, origin: CommandOrigin
    ) -> CommandStatus:
        self.sent.append((vehicle_id, command, origin))
        if self.hold is not None and command.type != "emergency_stop":
            await self.hold.wait()
        if self.error is not None:
            raise self.error
        assert command.command_id is not None and command.timestamp is not None
        return CommandStatus(command.command_id, vehicle_id, "sent", None, settled=False)


@dataclass
class Harness:
    registry: Registry
    router: RouterSink
    session: ActorRef[SessionMessage]
    link: SessionLink
    on_frame: FrameHandler
    directory: FakeDirectory

    async def send(self, frame: dict[str, Any]) -> None:
        await self.on_frame(json.dumps(frame))
        await trio.testing.wait_all_tasks_blocked()

    async def received(self) -> list[dict[str, Any]]:
        """Every frame the socket writer could take now."""
        await trio.testing.wait_all_tasks_blocked()
        frames = []
        while True:
            try:
                frames.append(frame_dict(self.link.queue.pop_nowait()))
            except trio.WouldBlock:
                return frames

    def describe(self) -> dict[str, Any]:
        rows = {(row["kind"], row["key"]): row for row in self.registry.snapshot()}
        return rows[(SESSION_KIND, SESSION)]


@asynccontextmanager
async def open_session(
    role: str = "operator",
    *,
    bound_vehicle_id: str | None = None,
    snapshot: FakeSnapshot | None = None,
) -> AsyncIterator[Harness]:
    async with open_registry() as registry:
        router = await start_router(registry, lambda: RouterState(seq_origin=0))
        link = SessionLink(label=SESSION)
        identity = SessionIdentity(SESSION, "alice", role, bound_vehicle_id)
        directory = FakeDirectory()
        take_snapshot = snapshot if snapshot is not None else FakeSnapshot()

        def new_session() -> SessionActor:
            return SessionActor(
                identity, link=link, router=router, directory=directory, snapshot=take_snapshot
            )

        session = await registry.get_or_start(SESSION_KIND, SESSION, new_session)
        on_frame = frame_handler(session, link, bound_vehicle_id=bound_vehicle_id)
        yield Harness(registry, router, session, link, on_frame, directory)


def location(vehicle_id: str) -> dict[str, Any]:
    return ws_events.location_update(vehicle_id, TIMESTAMP, {"latitude": 35.0}, seq=0)


def resume(command_id: str | None = "cmd_1", vehicle_id: str | None = "v1") -> dict[str, Any]:
    frame = {"type": "resume", "command_id": command_id, "vehicle_id": vehicle_id}
    return {key: value for key, value in frame.items() if value is not None}


async def test_subscribe_answers_with_a_snapshot_of_each_vehicle_then_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        snapshot = FakeSnapshot()
        async with open_session("viewer", snapshot=snapshot) as harness:
            await harness.send({"type": "subscribe", "vehicle_ids": ["v1", "v2"]})
            harness.router.vehicle_event("v1", location("v1"))
            harness.router.vehicle_event("v3", location("v3"))

            assert await harness.received() == [
                {
                    "type": "subscribed",
                    "vehicle_ids": ["v1", "v2"],
                    "snapshot": [
                        {"vehicle_id": "v1", "state": "idle"},
                        {"vehicle_id": "v2", "state": "idle"},
                    ],
                },
                {**location("v1"), "seq": 1},
            ]
            assert snapshot.calls == [["v1", "v2"]]

            await harness.send({"type": "subscribe", "vehicle_ids": ["*"]})
            harness.router.vehicle_event("v7", location("v7"))
            frames = await harness.received()
            assert [(f["type"], f["vehicle_id"]) for f in frames[1:]] == [("location_update", "v7")]
            assert (frames[0]["vehicle_ids"], snapshot.calls[1]) == (["*"], None)


async def test_a_reconnecting_frontend_gets_what_it_missed_after_subscribed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("viewer") as harness:
            for _ in range(3):
                harness.router.vehicle_event("v1", location("v1"))
            await trio.testing.wait_all_tasks_blocked()

            await harness.send(
                {"type": "subscribe", "vehicle_ids": ["v1", "v2"], "since": {"v1": 1, "v2": 5}}
            )
            harness.router.vehicle_event("v1", location("v1"))

            frames = await harness.received()
            assert frames[0]["type"] == "subscribed"
            assert frames[0]["replayed"] == {"v1": True, "v2": False}
            assert [(frame["type"], frame["seq"]) for frame in frames[1:]] == [
                ("location_update", 2),
                ("location_update", 3),
                ("location_update", 4),
            ]


async def test_live_events_wait_behind_the_answer_while_the_snapshot_loads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("viewer", snapshot=FakeSnapshot(delay=2.0)) as harness:
            start = trio.current_time()
            written: list[tuple[float, str]] = []

            async def writer() -> None:
                while True:
                    frame = await harness.link.next_frame()
                    written.append((trio.current_time() - start, frame.get("type")))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                await harness.on_frame(json.dumps({"type": "subscribe", "vehicle_ids": ["v1"]}))
                await trio.sleep(1)
                harness.router.vehicle_event("v1", location("v1"))
                await trio.sleep(5)
                nursery.cancel_scope.cancel()

            assert written == [(2.0, "subscribed"), (2.0, "location_update")]


async def test_a_snapshot_that_cannot_be_read_still_subscribes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        failing = FakeSnapshot(error=UnavailableError())
        async with open_session("viewer", snapshot=failing) as harness:
            await harness.send({"type": "subscribe", "vehicle_ids": ["v1"]})
            harness.router.vehicle_event("v1", location("v1"))

            frames = await harness.received()
            assert [frame["type"] for frame in frames] == ["error", "subscribed", "location_update"]
            assert frames[0]["code"] == "service_unavailable"
            assert frames[1]["snapshot"] == []


async def test_unsubscribe_stops_that_vehicle_only(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_session("viewer") as harness:
            await harness.send({"type": "subscribe", "vehicle_ids": ["v1", "v2"]})
            await harness.send({"type": "unsubscribe", "vehicle_ids": ["v2"]})
            harness.router.vehicle_event("v2", location("v2"))
            harness.router.vehicle_event("v1", location("v1"))

            frames = await harness.received()
            assert [frame["type"] for frame in frames] == ["subscribed", "location_update"]
            assert frames[1]["vehicle_id"] == "v1"
            assert harness.describe()["subscriptions"] == ["v1"]


async def test_a_viewer_may_not_send_commands(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_session("viewer") as harness:
            await harness.send(resume("cmd_1"))

            assert await harness.received() == [
                {
                    "type": "error",
                    "code": "forbidden",
                    "message": "Role viewer may not send commands",
                    "command_id": "cmd_1",
                }
            ]
            assert harness.directory.sent == []


async def test_an_operator_command_reaches_the_directory_with_its_session_as_origin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator") as harness:
            await harness.send(resume("cmd_1"))
            await harness.send(resume(command_id=None))

            (first_vehicle, first, origin), (_, second, _) = harness.directory.sent
            assert (first_vehicle, first.command_id, first.type) == ("v1", "cmd_1", "resume")
            assert origin == CommandOrigin("alice", "operator", session_id=SESSION)
            # The hub fills in what the frontend left out, so errors can name the command.
            assert second.command_id is not None and second.command_id.startswith("cmd_")
            assert isinstance(first.timestamp, datetime) and first.timestamp.tzinfo == UTC
            assert await harness.received() == []  # statuses come through the Router

            await harness.send({"type": "subscribe", "vehicle_ids": ["v1", "*"]})
            await harness.received()
            status = ws_events.command_status("cmd_1", "v1", "sent", None)
            harness.router.command_status("v1", status, sender_session=SESSION)
            assert await harness.received() == [status]  # once, though subscribed twice over


REFUSALS = [
    UnknownVehicleError("v1"),
    ConflictError("duplicate_command", "cmd_1 was already used"),
    ConflictError("invalid_command_state", "not stopped"),
]


@pytest.mark.parametrize("error", REFUSALS, ids=lambda error: error.error)
async def test_a_refused_command_becomes_an_error_frame_naming_it(
    autojump_clock: trio.testing.MockClock, error: ContractError
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("admin") as harness:
            harness.directory.error = error
            await harness.send(resume("cmd_1"))

            frames = await harness.received()
            assert [(f["type"], f["code"], f["command_id"]) for f in frames] == [
                ("error", error.error, "cmd_1")
            ]


async def test_an_emergency_stop_does_not_wait_behind_other_commands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator") as harness:
            harness.directory.hold = trio.Event()
            await harness.send(resume("cmd_1"))
            await harness.send(resume("cmd_2"))
            await harness.send(
                {"type": "emergency_stop", "command_id": "cmd_ESTOP_1", "vehicle_id": "v1"}
            )

            sent = harness.directory.sent
            assert [command.command_id for _, command, _ in sent] == ["cmd_1", "cmd_ESTOP_1"]
            harness.directory.hold.set()
            await trio.testing.wait_all_tasks_blocked()
            assert [command.command_id for _, command, _ in sent][2:] == ["cmd_2"]


async def test_ping_gets_pong_and_a_frame_that_is_no_message_is_an_error_for_run_socket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("viewer") as harness:
            await harness.send({"type": "ping", "timestamp": TIMESTAMP})
            await harness.send({"type": "pong", "timestamp": TIMESTAMP})
            frames = await harness.received()
            assert [frame["type"] for frame in frames] == ["pong"]
            assert isinstance(frames[0]["timestamp"], str)

            with pytest.raises(ContractError) as not_json:
                await harness.on_frame("{nope")
            with pytest.raises(ContractError) as unknown:
                await harness.on_frame(json.dumps({"type": "location"}))
            assert not_json.value.error == "invalid_json"
            assert unknown.value.error == "invalid_message"


async def test_a_command_that_fails_validation_gets_an_error_naming_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator") as harness:
            await harness.send(resume("cmd_7", vehicle_id=None))  # the fleet socket needs one
            await harness.send({**resume("cmd_8"), "priority": "whenever"})

            frames = await harness.received()
            assert [(f["type"], f["code"], f["command_id"]) for f in frames] == [
                ("error", "invalid_command", "cmd_7"),
                ("error", "invalid_command", "cmd_8"),
            ]
            assert harness.directory.sent == []


async def test_a_session_bound_to_a_vehicle_watches_it_and_commands_it_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator", bound_vehicle_id="v1") as harness:
            harness.router.vehicle_event("v1", location("v1"))
            await harness.send(resume(vehicle_id=None))

            frames = await harness.received()
            assert frames[0] == {
                "type": "subscribed",
                "vehicle_ids": ["v1"],
                "snapshot": [{"vehicle_id": "v1", "state": "idle"}],
            }
            assert [frame["type"] for frame in frames[1:]] == ["location_update"]
            assert [vehicle_id for vehicle_id, _, _ in harness.directory.sent] == ["v1"]


async def test_describe_shows_the_session_and_its_subscriptions_die_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("admin") as harness:
            await harness.send({"type": "subscribe", "vehicle_ids": ["v1"]})
            for _ in range(3):  # nobody writes: the three collapse into one
                harness.router.vehicle_event("v1", location("v1"))
            await trio.testing.wait_all_tasks_blocked()

            row = harness.describe()
            expected = ("admin", "alice", ["v1"])
            assert (row["role"], row["username"], row["subscriptions"]) == expected
            assert (row["queue_depth"], row["conflated"], row["connection"]) == (2, 2, "open")

            # What the endpoint does when the socket ends: the subscriptions die with it.
            await harness.registry.supervisor.stop_child(SESSION_KIND, SESSION)
            harness.router.detach(SESSION)
            await trio.testing.wait_all_tasks_blocked()

            router = harness.registry.snapshot()[0]
            assert (router["kind"], router["sessions"], router["subscriptions"]) == ("router", 0, 0)


async def test_a_stopped_session_closes_its_socket_with_1001(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator") as harness:
            await harness.registry.supervisor.stop_child(SESSION_KIND, SESSION)
            assert await closed_with(harness.link) == (1001, "server going away")


async def test_a_crashed_session_closes_its_socket_with_1011(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_session("operator") as harness:
            await harness.session.tell(Inbound(object()))  # type: ignore[arg-type]  # a bug
            assert await closed_with(harness.link) == (1011, "internal error")
