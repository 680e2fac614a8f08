"""AlertService on MockClock: escalation times, acknowledgement, side channels never blocking."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing
from actors.alerts.service import AlertingSink, AlertService, decode_cursor, encode_cursor

from actors.alerts.channels import alert_email
from actors.events import RecordingSink
from hub.contract import ws_events
from hub.errors import ContractError
from storage.database import StorageUnavailableError
from storage.queries.alerts import OpenCritical

EPOCH = datetime(2025, 12, 16, 10, 0, tzinfo=UTC)


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
    ) -> list[dict[str, Any]]:
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
        return rows[:limit]

    async def acknowledge(self, alert_id: str, acknowledged_by: str) -> dict[str, Any] | None:
        await trio.lowlevel.checkpoint()
        row = self.rows.get(alert_id)
        if row is not None and row["acknowledged_at"] is None:
            row["acknowledged_by"] = acknowledged_by
            row["acknowledged_at"] = EPOCH + timedelta(seconds=trio.current_time())
        return row

    async def mark_escalated(self, alert_id: str) -> dict[str, Any] | None:
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


class TimedSink(RecordingSink):
    """Keeps each alert with the trio time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def alert(self, event: dict[str, Any]) -> None:
        super().alert(event)
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


@asynccontextmanager
async def running(service: AlertService) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield
        nursery.cancel_scope.cancel()


def raise_alert(service: AlertService, store: FakeStore, frame: dict[str, Any]) -> float:
    """Store then deliver an alert, as the Writer and the VehicleActor do; its trio time."""
    store.add(frame)
    service.alert(frame)
    return trio.current_time()


async def test_critical_alert_escalates_exactly_at_300_s_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    async with running(service):
        await trio.sleep(7.25)  # not at a round time
        raised = raise_alert(service, store, make_frame("alert_a"))
        assert sink.times == [raised]  # delivered at once
        await trio.sleep(299.999)
        assert sink.escalations() == []
        await trio.sleep(0.002)
        [(when, frame)] = sink.escalations()
        assert when == pytest.approx(raised + 300.0, abs=1e-9)
        assert frame["alert_id"] == "alert_a"
        assert frame["escalated"] is True
        assert frame["severity"] == "critical"
        assert frame["timestamp"] == "2025-12-16T10:00:07.250Z"  # when it was raised
        assert store.rows["alert_a"]["escalated_at"] is not None


async def test_escalation_time_is_configurable(autojump_clock: trio.testing.MockClock) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store, escalate_after=30.0)
    async with running(service):
        raised = raise_alert(service, store, make_frame("alert_a"))
        await trio.sleep(3600)
    [(when, _)] = sink.escalations()
    assert when == pytest.approx(raised + 30.0, abs=1e-9)


async def test_escalated_once_only(autojump_clock: trio.testing.MockClock) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    async with running(service):
        raise_alert(service, store, make_frame("alert_a"))
        await trio.sleep(4 * 3600)  # many sweeps later
    assert len(sink.escalations()) == 1
    assert [alert_id for _, alert_id in store.mark_calls] == ["alert_a"]
    assert service.stats()["escalated"] == 1


async def test_acknowledged_alert_is_not_escalated(autojump_clock: trio.testing.MockClock) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    async with running(service):
        raise_alert(service, store, make_frame("alert_a"))
        await trio.sleep(100)
        item = await service.acknowledge("alert_a", "olivia")
        assert item["acknowledged_by"] == "olivia"
        await trio.sleep(3600)
    assert sink.escalations() == []
    assert store.mark_calls == []  # the ack stopped the timer: no escalation attempt at all


async def test_alert_acknowledged_on_another_hub_is_not_escalated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    async with running(service):
        raise_alert(service, store, make_frame("alert_a"))
        await trio.sleep(299)
        store.rows["alert_a"]["acknowledged_at"] = EPOCH  # straight into the table
        await trio.sleep(3600)
    assert sink.escalations() == []


async def test_acknowledging_twice_keeps_the_first_and_unknown_is_404(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    raise_alert(service, store, make_frame("alert_a"))
    first = await service.acknowledge("alert_a", "olivia")
    await trio.sleep(10)
    again = await service.acknowledge("alert_a", "oscar")
    assert again == first
    with pytest.raises(ContractError) as caught:
        await service.acknowledge("alert_nope", "olivia")
    assert (caught.value.status, caught.value.error) == (404, "not_found")


async def test_stored_alerts_found_at_start_are_aged_from_created_at(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    store.add(make_frame("alert_recent"), age=250.0)
    store.add(make_frame("alert_overdue"), age=1000.0)
    store.add(make_frame("alert_warning", severity="warning"), age=1000.0)
    service = AlertService(sink=sink, store=store)
    start = trio.current_time()
    async with running(service):
        await trio.sleep(3600)
    escalations = [(when - start, frame["alert_id"]) for when, frame in sink.escalations()]
    assert escalations == [
        (pytest.approx(0.0, abs=1e-9), "alert_overdue"),
        (pytest.approx(50.0, abs=1e-9), "alert_recent"),
    ]


async def test_alert_raised_on_another_hub_is_found_by_the_sweep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store, sweep_interval=60.0)
    async with running(service):
        await trio.sleep(10)
        store.add(make_frame("alert_elsewhere"))  # stored, never handed to this service
        raised = trio.current_time()
        await trio.sleep(3600)
    [(when, frame)] = sink.escalations()
    assert frame["alert_id"] == "alert_elsewhere"
    assert when == pytest.approx(raised + 300.0, abs=1e-9)


async def test_database_down_at_escalation_time_retries_later(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store, retry_interval=60.0)
    async with running(service):
        raised = raise_alert(service, store, make_frame("alert_a"))
        store.fail_marks = 1
        await trio.sleep(3600)
    [(when, _)] = sink.escalations()
    assert when == pytest.approx(raised + 360.0, abs=1e-9)
    assert "cannot escalate alert alert_a" in caplog.text


async def test_alert_never_stored_is_escalated_from_memory(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store)
    async with running(service):
        raised = trio.current_time()
        service.alert(make_frame("alert_lost"))  # its row was never written
        await trio.sleep(1000)
    [(when, frame)] = sink.escalations()
    assert when == pytest.approx(raised + 300.0, abs=1e-9)
    assert frame["alert_id"] == "alert_lost"
    assert "not stored" in caplog.text


async def test_non_critical_alerts_go_to_sessions_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink, channel = FakeStore(), TimedSink(), RecordingChannel()
    service = AlertService(sink=sink, store=store, channels=[channel])
    async with running(service):
        for severity in ("info", "warning", "error"):
            raise_alert(service, store, make_frame(f"alert_{severity}", severity=severity))
        await trio.sleep(3600)
    assert [frame["severity"] for frame in sink.alerts] == ["info", "warning", "error"]
    assert channel.delivered == []
    assert sink.escalations() == []
    assert service.stats()["raised"] == {"info": 1, "warning": 1, "error": 1}


async def test_hanging_email_delays_neither_sessions_nor_redis_nor_escalation(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store, sink = FakeStore(), TimedSink()
    email, redis = HangingChannel(), RecordingChannel()
    service = AlertService(sink=sink, store=store, channels=[email, redis], send_timeout=10.0)
    async with running(service):
        start = trio.current_time()
        raise_alert(service, store, make_frame("alert_a"))
        raise_alert(service, store, make_frame("alert_b"))
        assert sink.times == [start, start]  # alert() returned after delivering to sessions
        await trio.sleep(0.001)
        assert [(when, f["alert_id"]) for when, f in redis.delivered] == [
            (start, "alert_a"),
            (start, "alert_b"),
        ]
        await trio.sleep(3600)
    assert [when - start for when in email.started] == [
        0.0,
        pytest.approx(10.0),  # the first attempt was given up after 10 s
        pytest.approx(300.0),  # escalation of alert_a
        pytest.approx(310.0),  # … and of alert_b, queued behind it
    ]
    assert [when - start for when, _ in sink.escalations()] == [
        pytest.approx(300.0, abs=1e-9),
        pytest.approx(300.0, abs=1e-9),
    ]
    assert [f["escalated"] for _, f in redis.delivered] == [False, False, True, True]
    assert service.stats()["channels"]["email"]["failed"] == 4
    assert "no answer within 10 s" in caplog.text


async def test_failing_channel_is_logged_and_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store, channels=[BrokenChannel()])
    async with running(service):
        raise_alert(service, store, make_frame("alert_a"))
        await trio.sleep(1)
    assert len(sink.alerts) == 1
    assert service.stats()["channels"]["redis"] == {
        "sent": 0,
        "failed": 1,
        "dropped": 0,
        "queued": 0,
    }
    assert "alert alert_a not sent by redis: ConnectionRefusedError" in caplog.text


async def test_full_channel_queue_drops_instead_of_blocking(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, sink = FakeStore(), TimedSink()
    service = AlertService(sink=sink, store=store, channels=[HangingChannel()], queue_size=2)
    for number in range(5):  # the service is not running: nothing empties the queue
        raise_alert(service, store, make_frame(f"alert_{number}"))
    assert len(sink.alerts) == 5
    assert service.stats()["channels"]["email"]["dropped"] == 3


async def test_alerting_sink_routes_alerts_through_the_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router, store = RecordingSink(), FakeStore()
    channel = RecordingChannel()
    service = AlertService(sink=router, store=store, channels=[channel])
    sink = AlertingSink(router, service)
    async with running(service):
        sink.vehicle_event("wheelchair_001", {"type": "location_update"})
        sink.command_status("wheelchair_001", {"type": "command_status"}, sender_session="s1")
        sink.alert(make_frame("alert_a"))
        await trio.sleep(1)
    assert router.vehicle_events == [("wheelchair_001", {"type": "location_update"})]
    assert router.command_statuses == [("wheelchair_001", {"type": "command_status"}, "s1")]
    assert [f["alert_id"] for f in router.alerts] == ["alert_a"]
    assert [f["alert_id"] for _, f in channel.delivered] == ["alert_a"]


async def test_list_pages_newest_first_through_ties(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    service = AlertService(sink=RecordingSink(), store=store)
    for number in range(5):  # the same created_at, as for one bulk upload
        store.add(make_frame(f"alert_{number}"))
    await trio.sleep(1)
    store.add(make_frame("alert_newest", severity="warning"))
    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list_alerts(
            open_only=True, vehicle_id=None, severity=None, limit=2, cursor=cursor
        )
        seen += [item["alert_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alert_newest", "alert_4", "alert_3", "alert_2", "alert_1", "alert_0"]


def test_cursor_round_trip_and_tampering() -> None:
    moment = datetime(2025, 12, 16, 10, 30, 45, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "alert_1")) == (moment, "alert_1")
    for bad in ("nonsense!", "MjAyNS0xMi0xNg", encode_cursor(moment, "")):
        with pytest.raises(ContractError) as caught:
            decode_cursor(bad)
        assert (caught.value.status, caught.value.field) == (400, "cursor")


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
