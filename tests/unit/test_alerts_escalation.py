"""The Alerts actor on MockClock: escalation times, acknowledgement, side channels never
blocking; the alert book (listing, acknowledging) and the publisher vehicle actors use.

The actor runs under a supervisor and is told :class:`RaiseAlert` and
:class:`AlertAcknowledged` as the hub tells it; the alerts table is an in-memory fake whose
"database clock" is trio's clock.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from actors.alerts.actor import (
    ALERTS_KEY,
    ALERTS_KIND,
    AlertsActor,
    AlertsMessage,
    RaiseAlert,
)
from actors.alerts.book import AlertBook
from actors.alerts.channels import AlertChannel, alert_email
from actors.alerts.publisher import HubPublisher
from actors.router.actor import (
    RouterState,
)
from actors.router.messages import (
    Attach,
    SessionHandle,
    Subscribe,
)
from actors.router.sink import start_router
from actors.sockets.encoded import Frame, frame_dict
from api.bodies.reads import alert_item
from api.errors import answer_for
from api.paging import decode_cursor, encode_cursor, optional_cursor, page_body
from hub.contract import ws_events
from hub.errors import InvalidInputError, NotFoundError
from hub.runtime import ActorRef
from hub.runtime.testing import open_registry, open_supervisor
from storage.database import Row, StorageUnavailableError
from storage.queries.alerts import OpenCritical

EPOCH = datetime(2025, 12, 16, 10, 0, tzinfo=UTC)
GUARD = 5 * 3600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


class FakeStore:
    """The alerts table in memory; its "database clock" is trio's clock."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.raised_at: dict[str, float] = {}
        self.fail_marks = 0
        self.mark_calls: list[tuple[float, str]] = []

    def add(self, frame: dict[str, Any], *, age: float = 0.0) -> None:
        """Store the alert of ``frame`` as raised ``age`` seconds ago."""
        now = trio.current_time()
        self.raised_at[frame["alert_id"]] = now - age
        self.rows[frame["alert_id"]] = {
            "alert_id": frame["alert_id"],
            "vehicle_id": frame["vehicle_id"],
            "kind": frame["kind"],
            "severity": frame["severity"],
            "error_code": frame["error_code"],
            "message": frame["message"],
            "details": {},
            "backfilled": frame["backfilled"],
            "created_at": EPOCH + timedelta(seconds=now - age),
            "acknowledged_by": None,
            "acknowledged_at": None,
            "escalated_at": None,
        }

    async def page(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        await trio.lowlevel.checkpoint()
        rows = sorted(
            self.rows.values(), key=lambda r: (r["created_at"], r["alert_id"]), reverse=True
        )
        rows = [
            r
            for r in rows
            if (open_only is None or (r["acknowledged_at"] is None) == open_only)
            and (vehicle_id is None or r["vehicle_id"] == vehicle_id)
            and (severity is None or r["severity"] == severity)
            and (before is None or (r["created_at"], r["alert_id"]) < before)
        ]
        return [dict(row) for row in rows[:limit]]

    async def acknowledge(self, alert_id: str, acknowledged_by: str) -> Row | None:
        await trio.lowlevel.checkpoint()
        row = self.rows.get(alert_id)
        if row is None:
            return None
        if row["acknowledged_at"] is None:
            row["acknowledged_by"] = acknowledged_by
            row["acknowledged_at"] = EPOCH + timedelta(seconds=trio.current_time())
        return dict(row)  # the row as stored now, as a query returns it

    async def mark_escalated(self, alert_id: str) -> Row | None:
        await trio.lowlevel.checkpoint()
        self.mark_calls.append((trio.current_time(), alert_id))
        if self.fail_marks:
            self.fail_marks -= 1
            raise StorageUnavailableError("database down")
        row = self.rows.get(alert_id)
        if row is None:
            return None
        marked = row["acknowledged_at"] is None and row["escalated_at"] is None
        if marked:
            row["escalated_at"] = EPOCH + timedelta(seconds=trio.current_time())
        return {**row, "marked": marked}

    async def unescalated_critical(self) -> list[OpenCritical]:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        return [
            OpenCritical(alert_id, now - self.raised_at[alert_id])
            for alert_id, row in self.rows.items()
            if row["severity"] == "critical"
            and row["acknowledged_at"] is None
            and row["escalated_at"] is None
        ]


class TimedFanOut:
    """The Router as the Alerts actor sees it: keeps each alert with the trio time it came."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.times: list[float] = []

    def alert(self, event: dict[str, Any]) -> None:
        self.alerts.append(event)
        self.times.append(trio.current_time())

    def escalations(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, f) for t, f in zip(self.times, self.alerts, strict=True) if f["escalated"]]


class RecordingChannel:
    name = "redis"

    def __init__(self) -> None:
        self.delivered: list[tuple[float, dict[str, Any]]] = []

    async def deliver(self, frame: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        self.delivered.append((trio.current_time(), frame))


class HangingChannel:
    """An e-mail server that answers nothing for 60 s."""

    name = "email"

    def __init__(self) -> None:
        self.started: list[float] = []

    async def deliver(self, frame: dict[str, Any]) -> None:
        self.started.append(trio.current_time())
        await trio.sleep(60)


class BrokenChannel:
    name = "redis"

    async def deliver(self, frame: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        raise ConnectionRefusedError("Connection refused")


def make_frame(alert_id: str, severity: str = "critical", **extra: Any) -> dict[str, Any]:
    return ws_events.alert(
        alert_id,
        "wheelchair_001",
        severity=severity,
        kind="error_report",
        message="Collision detected",
        timestamp="2025-12-16T10:00:00.000Z",
        error_code="SAFE_COLLISION_DETECTED",
        **extra,
    )


@dataclass
class Alerts:
    """A running Alerts actor, its store and fan-out, and the book people use."""

    ref: ActorRef[AlertsMessage]
    incarnations: list[AlertsActor]
    store: FakeStore
    fan_out: TimedFanOut

    @property
    def book(self) -> AlertBook:
        return AlertBook(self.store, self.ref)

    async def deliver(self, frame: dict[str, Any]) -> float:
        """Hand an alert to the actor (as a VehicleActor does); the trio time it was handled."""
        self.ref.tell_nowait(RaiseAlert(frame))
        await trio.testing.wait_all_tasks_blocked()
        return trio.current_time()

    async def raise_alert(self, frame: dict[str, Any]) -> float:
        """Store then deliver an alert, as the Writer and the VehicleActor do; its trio time."""
        self.store.add(frame)
        return await self.deliver(frame)

    def describe(self) -> dict[str, Any]:
        return self.incarnations[-1].describe()


@asynccontextmanager
async def open_alerts(
    store: FakeStore | None = None,
    *,
    channels: Sequence[AlertChannel] = (),
    **options: Any,
) -> AsyncIterator[Alerts]:
    """The Alerts actor running under a supervisor; stopped at the end."""
    store = store if store is not None else FakeStore()
    fan_out = TimedFanOut()
    incarnations: list[AlertsActor] = []

    def new_actor() -> AlertsActor:
        incarnations.append(AlertsActor(fan_out=fan_out, store=store, channels=channels, **options))
        return incarnations[-1]

    async with open_supervisor() as supervisor:
        ref = await supervisor.start_child(ALERTS_KIND, ALERTS_KEY, new_actor)
        yield Alerts(ref, incarnations, store, fan_out)


# --- escalation ------------------------------------------------------------------------------


async def test_critical_alert_escalates_exactly_at_300_s_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            await trio.sleep(7.25)  # not at a round time
            raised = await alerts.raise_alert(make_frame("alert_a"))
            assert alerts.fan_out.times == [raised]  # delivered at once
            await trio.sleep(299.999)
            assert alerts.fan_out.escalations() == []
            await trio.sleep(0.002)
            [(when, frame)] = alerts.fan_out.escalations()
            assert when == pytest.approx(raised + 300.0, abs=1e-9)
            assert frame["alert_id"] == "alert_a"
            assert frame["escalated"] is True
            assert frame["severity"] == "critical"
            assert frame["timestamp"] == "2025-12-16T10:00:07.250Z"  # when it was raised
            assert alerts.store.rows["alert_a"]["escalated_at"] is not None


async def test_escalation_time_is_configurable(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts(escalate_after=30.0) as alerts:
            raised = await alerts.raise_alert(make_frame("alert_a"))
            await trio.sleep(3600)
    [(when, _)] = alerts.fan_out.escalations()
    assert when == pytest.approx(raised + 30.0, abs=1e-9)


async def test_escalated_once_only(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            await alerts.raise_alert(make_frame("alert_a"))
            await trio.sleep(4 * 3600)  # many sweeps later
            described = alerts.describe()
    assert len(alerts.fan_out.escalations()) == 1
    assert [alert_id for _, alert_id in alerts.store.mark_calls] == ["alert_a"]
    assert (described["escalated"], described["watching"]) == (1, 0)


async def test_acknowledged_alert_is_not_escalated(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            await alerts.raise_alert(make_frame("alert_a"))
            await trio.sleep(100)
            row = await alerts.book.acknowledge("alert_a", "olivia")
            assert alert_item(row)["acknowledged_by"] == "olivia"
            await trio.testing.wait_all_tasks_blocked()
            assert alerts.describe()["watching"] == 0  # told at once: no longer watched
            await trio.sleep(3600)
    assert alerts.fan_out.escalations() == []
    assert alerts.store.mark_calls == []  # the ack stopped the timer: no escalation attempt at all


async def test_alert_acknowledged_on_another_hub_is_not_escalated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            await alerts.raise_alert(make_frame("alert_a"))
            await trio.sleep(299)
            alerts.store.rows["alert_a"]["acknowledged_at"] = EPOCH  # straight into the table
            await trio.sleep(3600)
    assert alerts.fan_out.escalations() == []


async def test_acknowledging_twice_keeps_the_first_and_unknown_is_404(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            await alerts.raise_alert(make_frame("alert_a"))
            first = alert_item(await alerts.book.acknowledge("alert_a", "olivia"))
            await trio.sleep(10)
            again = alert_item(await alerts.book.acknowledge("alert_a", "oscar"))
            assert again == first
            assert first["acknowledged_by"] == "olivia"
            with pytest.raises(NotFoundError) as caught:
                await alerts.book.acknowledge("alert_nope", "olivia")
    assert (answer_for(caught.value).status, caught.value.error) == (404, "not_found")


async def test_stored_alerts_found_at_start_are_aged_from_created_at(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    store.add(make_frame("alert_recent"), age=250.0)
    store.add(make_frame("alert_overdue"), age=1000.0)
    store.add(make_frame("alert_warning", severity="warning"), age=1000.0)
    start = trio.current_time()
    with trio.fail_after(GUARD):
        async with open_alerts(store) as alerts:
            await trio.sleep(3600)
    escalations = [(when - start, f["alert_id"]) for when, f in alerts.fan_out.escalations()]
    assert escalations == [
        (pytest.approx(0.0, abs=1e-9), "alert_overdue"),
        (pytest.approx(50.0, abs=1e-9), "alert_recent"),
    ]


async def test_alert_raised_on_another_hub_is_found_by_the_sweep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts(sweep_interval=60.0) as alerts:
            await trio.sleep(10)
            alerts.store.add(make_frame("alert_elsewhere"))  # stored, never handed to this actor
            raised = trio.current_time()
            await trio.sleep(3600)
    [(when, frame)] = alerts.fan_out.escalations()
    assert frame["alert_id"] == "alert_elsewhere"
    assert when == pytest.approx(raised + 300.0, abs=1e-9)


async def test_database_down_at_escalation_time_retries_later(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts(retry_interval=60.0) as alerts:
            raised = await alerts.raise_alert(make_frame("alert_a"))
            alerts.store.fail_marks = 1
            await trio.sleep(3600)
    [(when, _)] = alerts.fan_out.escalations()
    assert when == pytest.approx(raised + 360.0, abs=1e-9)
    assert "cannot escalate alert alert_a" in caplog.text


async def test_alert_never_stored_is_escalated_from_memory(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            raised = await alerts.deliver(make_frame("alert_lost"))  # its row was never written
            await trio.sleep(1000)
    [(when, frame)] = alerts.fan_out.escalations()
    assert when == pytest.approx(raised + 300.0, abs=1e-9)
    assert frame["alert_id"] == "alert_lost"
    assert "not stored" in caplog.text


# --- side channels ---------------------------------------------------------------------------


async def test_non_critical_alerts_go_to_sessions_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = RecordingChannel()
    with trio.fail_after(GUARD):
        async with open_alerts(channels=[channel]) as alerts:
            for severity in ("info", "warning", "error"):
                await alerts.raise_alert(make_frame(f"alert_{severity}", severity=severity))
            await trio.sleep(3600)
            described = alerts.describe()
    assert [frame["severity"] for frame in alerts.fan_out.alerts] == ["info", "warning", "error"]
    assert channel.delivered == []
    assert alerts.fan_out.escalations() == []
    assert described["raised"] == {"info": 1, "warning": 1, "error": 1}


async def test_hanging_email_delays_neither_sessions_nor_redis_nor_escalation(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    email, redis = HangingChannel(), RecordingChannel()
    with trio.fail_after(GUARD):
        async with open_alerts(channels=[email, redis], send_timeout=10.0) as alerts:
            start = trio.current_time()
            await alerts.raise_alert(make_frame("alert_a"))
            await alerts.raise_alert(make_frame("alert_b"))
            assert alerts.fan_out.times == [start, start]  # sessions had them at once
            await trio.sleep(0.001)
            assert [(when, f["alert_id"]) for when, f in redis.delivered] == [
                (start, "alert_a"),
                (start, "alert_b"),
            ]
            await trio.sleep(3600)
            described = alerts.describe()
    assert [when - start for when in email.started] == [
        0.0,
        pytest.approx(10.0),  # the first attempt was given up after 10 s
        pytest.approx(300.0),  # escalation of alert_a
        pytest.approx(310.0),  # … and of alert_b, queued behind it
    ]
    assert [when - start for when, _ in alerts.fan_out.escalations()] == [
        pytest.approx(300.0, abs=1e-9),
        pytest.approx(300.0, abs=1e-9),
    ]
    assert [f["escalated"] for _, f in redis.delivered] == [False, False, True, True]
    assert described["channels"]["email"]["failed"] == 4
    assert "no answer within 10 s" in caplog.text


async def test_failing_channel_is_logged_and_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with trio.fail_after(GUARD):
        async with open_alerts(channels=[BrokenChannel()]) as alerts:
            await alerts.raise_alert(make_frame("alert_a"))
            await trio.sleep(1)
            described = alerts.describe()
    assert len(alerts.fan_out.alerts) == 1
    assert described["channels"]["redis"] == {"sent": 0, "failed": 1, "dropped": 0, "queued": 0}
    assert "alert alert_a not sent by redis: ConnectionRefusedError" in caplog.text


async def test_full_channel_queue_drops_instead_of_blocking(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fan_out = TimedFanOut()
    actor = AlertsActor(
        fan_out=fan_out, store=FakeStore(), channels=[HangingChannel()], queue_size=2
    )
    for number in range(5):  # the actor is not running: nothing empties the queue
        actor.handle(RaiseAlert(make_frame(f"alert_{number}")))
    assert len(fan_out.alerts) == 5
    assert actor.describe()["channels"]["email"]["dropped"] == 3


# --- the publisher vehicle actors use --------------------------------------------------------


async def test_the_publisher_sends_events_to_the_router_and_alerts_through_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, channel = FakeStore(), RecordingChannel()
    frames: list[dict[str, Any]] = []

    def deliver(frame: Frame) -> bool:
        frames.append(frame_dict(frame))
        return True

    with trio.fail_after(GUARD):
        async with open_registry() as registry:
            router = await start_router(registry, lambda: RouterState(seq_origin=0))
            actors = registry.supervisor
            alerts = await actors.start_child(
                ALERTS_KIND,
                ALERTS_KEY,
                lambda: AlertsActor(fan_out=router, store=store, channels=[channel]),
            )
            publisher = HubPublisher(router, alerts)
            assert await publisher.staff_online() is False
            staff = SessionHandle("s1", "operator", deliver)
            await router.ref.ask(lambda reply: Attach(staff, reply))
            await router.ref.ask(lambda reply: Subscribe("s1", ("wheelchair_001",), None, reply))
            assert await publisher.staff_online() is True

            location = ws_events.location_update(
                "wheelchair_001", "2025-12-16T10:00:00.000Z", {"latitude": 35.0}, seq=0
            )
            status = ws_events.command_status("cmd_1", "wheelchair_001", "sent", None)
            publisher.vehicle_event("wheelchair_001", location)
            publisher.command_status("wheelchair_001", status, sender_session="s1")
            publisher.alert(make_frame("alert_a"))
            await trio.testing.wait_all_tasks_blocked()
            assert [(f["type"], f.get("seq")) for f in frames] == [
                ("location_update", 1),
                ("command_status", None),
                ("alert", 2),
            ]
            assert [f["alert_id"] for _, f in channel.delivered] == ["alert_a"]

            # With the Alerts actor gone, an alert still reaches the sessions.
            await actors.stop_child(ALERTS_KIND, ALERTS_KEY)
            publisher.alert(make_frame("alert_b"))
            await trio.testing.wait_all_tasks_blocked()
            assert (frames[-1]["alert_id"], publisher.alerts_lost) == ("alert_b", 1)
            assert [f["alert_id"] for _, f in channel.delivered] == ["alert_a"]


# --- listing ---------------------------------------------------------------------------------


async def list_all(book: AlertBook, *, limit: int) -> list[str]:
    """Every open alert id, page by page, as ``GET /api/v1/alerts`` pages them."""
    seen: list[str] = []
    cursor = None
    while True:
        rows = await book.page(
            open_only=True,
            vehicle_id=None,
            severity=None,
            before=optional_cursor(cursor, (datetime, str)),
            limit=limit + 1,
        )
        page = page_body(
            rows, limit, render=alert_item, key=lambda row: (row["created_at"], row["alert_id"])
        )
        seen += [item["alert_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_list_pages_newest_first_through_ties(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        async with open_alerts() as alerts:
            for number in range(5):  # the same created_at, as for one bulk upload
                alerts.store.add(make_frame(f"alert_{number}"))
            await trio.sleep(1)
            alerts.store.add(make_frame("alert_newest", severity="warning"))
            assert await list_all(alerts.book, limit=2) == [
                "alert_newest",
                "alert_4",
                "alert_3",
                "alert_2",
                "alert_1",
                "alert_0",
            ]


def test_cursor_round_trip_and_tampering() -> None:
    moment = datetime(2025, 12, 16, 10, 30, 45, 123456, tzinfo=UTC)
    shape = (datetime, str)
    assert decode_cursor(encode_cursor(moment, "alert_1"), shape) == (moment, "alert_1")
    tampered = (
        "nonsense!",
        "MjAyNS0xMi0xNg",  # base64 of a bare date
        encode_cursor(moment),  # a part missing
        encode_cursor(moment, "alert_1", "extra"),
        encode_cursor("yesterday", "alert_1"),
        encode_cursor(moment.replace(tzinfo=None), "alert_1"),  # no time zone
        encode_cursor(moment, 7),
    )
    for bad in tampered:
        with pytest.raises(InvalidInputError) as caught:
            decode_cursor(bad, shape)
        error = caught.value
        assert (answer_for(error).status, error.error, error.field) == (
            400,
            "validation_error",
            "cursor",
        ), bad


def test_email_names_severity_vehicle_and_kind() -> None:
    message = alert_email(
        make_frame("alert_a", escalated=True), sender="hub@example.org", recipients=["ops@x.org"]
    )
    assert message["Subject"] == (
        "[TVM CRITICAL] wheelchair_001: error_report (escalated: not acknowledged)"
    )
    assert message["To"] == "ops@x.org"
    body = message.get_content()
    assert "SAFE_COLLISION_DETECTED" in body
    assert "alert_a" in body
