"""What an operator watches: /metrics, security events in the audit log."""

from __future__ import annotations

import json
import logging
import re

import trio

from hub.logs import current_request_id
from storage.testing import fetch
from tests.integration.harness import location_body, running_hub


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, matching all given labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_requests_telemetry_and_show_live_state(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            # The instruments are per process and other tests ran before: compare deltas.
            route = "/api/v1/vehicle/<vehicle_id>/location"
            before = (await hub.client.get("/metrics")).text
            ingested_before = _sample(before, "telemetry_ingested_total", kind="location") or 0
            requests_before = _sample(before, "request_count_total", route=route, status="200") or 0
            timed_before = (
                _sample(before, "request_duration_seconds_count", route=route, status="200") or 0
            )
            for offset in (-3, -2, -1):
                answer = await hub.post(vehicle, "location", location_body(_ts(offset)))
                assert answer.status_code == 200

            scraped = await hub.client.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            text = scraped.text
            requests = _sample(text, "request_count_total", route=route, status="200")
            assert requests == requests_before + 3
            timed = _sample(text, "request_duration_seconds_count", route=route, status="200")
            assert timed == timed_before + 3
            assert _sample(text, "telemetry_ingested_total", kind="location") == ingested_before + 3
            assert _sample(text, "db_pool_usage", state="size") is not None
            assert _sample(text, "active_connections", kind="vehicle") == 0
            assert _sample(text, "actor_mailbox_depth", kind="vehicle") == 0
            assert re.search(r"^offline_queue_depth \d", text, re.M)


async def test_failed_logins_and_refused_access_are_audited(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            first = await hub.register_vehicle("wheelchair_001")
            await hub.register_vehicle("wheelchair_002")
            refused = await hub.login(client_id=first.client_id, client_secret="wrong")
            assert refused.status_code == 401
            forbidden = await hub.client.post(
                "/api/v1/vehicle/wheelchair_002/location",
                json=location_body(),
                headers=first.headers,
            )
            assert forbidden.status_code == 403

            rows = await trio.to_thread.run_sync(
                fetch,
                database_url,
                "SELECT action, actor, actor_role, outcome, details, source_address, request_id"
                " FROM audit_logs WHERE action IN ('login_failed', 'access_forbidden')"
                " ORDER BY audit_id",
            )
            assert [(r["action"], r["actor"], r["outcome"]) for r in rows] == [
                ("login_failed", first.client_id, "refused"),
                ("access_forbidden", "wheelchair_001", "refused"),
            ]
            assert '"/api/v1/vehicle/wheelchair_002/location"' in rows[1]["details"]
            assert rows[1]["request_id"] == forbidden.headers["X-Request-ID"]
            assert rows[0]["source_address"] == "127.0.0.1"


async def test_a_principal_hammering_a_forbidden_route_writes_one_counted_row(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            first = await hub.register_vehicle("wheelchair_001")
            await hub.register_vehicle("wheelchair_002")
            for _ in range(30):
                forbidden = await hub.client.post(
                    "/api/v1/vehicle/wheelchair_002/location",
                    json=location_body(),
                    headers=first.headers,
                )
                assert forbidden.status_code == 403
            other_route = await hub.client.get("/api/v1/vehicles", headers=first.headers)
            assert other_route.status_code == 403
            for _ in range(5):
                assert (
                    await hub.login(client_id=first.client_id, client_secret="no")
                ).status_code == 401

            rows = await trio.to_thread.run_sync(
                fetch,
                database_url,
                "SELECT action, actor, repeat_count, last_at FROM audit_logs"
                " WHERE action IN ('login_failed', 'access_forbidden') ORDER BY audit_id",
            )
            assert [(r["action"], r["actor"], r["repeat_count"]) for r in rows] == [
                ("access_forbidden", "wheelchair_001", 30),
                ("access_forbidden", "wheelchair_001", 1),
                ("login_failed", first.client_id, 5),
            ]
            assert rows[0]["last_at"] is not None
            audit = await hub.client.get("/api/v1/admin/audit", headers=hub.admin_headers)
            counted = [item for item in audit.json()["items"] if item["repeat_count"] == 30]
            assert len(counted) == 1 and counted[0]["last_at"] is not None


def _ts(offset: float) -> str:
    from tests.integration.harness import timestamp

    return timestamp(offset)


async def test_staff_notified_says_whether_an_admin_or_operator_was_watching(
    database_url: str,
) -> None:
    from trio_websocket import open_websocket_url

    from tests.integration.harness import error_body

    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            alone = await hub.post(vehicle, "error", error_body("critical", ts=_ts(-2)))
            assert alone.json()["action"] == "alert_staff"
            assert alone.json()["staff_notified"] is False

            url = hub.base_url.replace("http://", "ws://")
            async with open_websocket_url(f"{url}/ws/v1/fleet?token={hub.admin_token}") as fleet:
                await fleet.send_message('{"type": "ping"}')
                assert '"pong"' in await fleet.get_message()  # the session is attached
                watched = await hub.post(vehicle, "error", error_body("critical", ts=_ts(-1)))
                assert watched.json()["staff_notified"] is True
                alert = await fleet.get_message()
                assert watched.json()["alert_id"] in alert
            logged = await hub.post(vehicle, "error", error_body("warning"))
            assert logged.json()["staff_notified"] is False


class _RequestIds(logging.Handler):
    """Keeps (logger, message, request id of the task's log context) of every record."""

    def __init__(self, awaited: str) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, str, str | None, int]] = []
        self._awaited = awaited
        self.arrived = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        request_id = getattr(record, "request_id", None) or current_request_id()
        message = record.getMessage()
        self.seen.append((record.name, message, request_id, record.levelno))
        if self._awaited in message:
            self.arrived.set()


async def test_log_lines_carry_the_request_that_caused_them(database_url: str) -> None:
    from trio_websocket import open_websocket_url

    handler = _RequestIds("cmd_nobody")
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with trio.fail_after(60):
            async with running_hub(database_url) as hub:
                vehicle = await hub.register_vehicle("wheelchair_001")
                # This request starts the vehicle's actor: its id must not stick to the actor.
                first = await hub.client.post(
                    "/api/v1/vehicle/wheelchair_001/location",
                    json=location_body(),
                    headers={**vehicle.headers, "X-Request-ID": "starts-the-actor"},
                )
                assert first.status_code == 200
                url = hub.base_url.replace("http", "ws") + "/ws/v1/vehicle/wheelchair_001"
                async with open_websocket_url(
                    f"{url}?token={vehicle.token}",
                    extra_headers=[("X-Request-ID", "the-socket")],
                ) as socket:
                    await socket.get_message()  # welcome
                    ack = {"type": "command_ack", "command_id": "cmd_nobody", "status": "executed"}
                    await socket.send_message(json.dumps(ack))
                    await handler.arrived.wait()
                refused = await hub.client.get(
                    "/api/v1/vehicles", headers={**vehicle.headers, "X-Request-ID": "refused-one"}
                )
                assert refused.status_code == 403
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    [unknown_ack] = [entry for entry in handler.seen if "cmd_nobody" in entry[1]]
    assert unknown_ack[2] == "the-socket"
    # (A count of lines an earlier test's flood left out may come first: the throttle is the
    # process's.)
    [refusal] = [
        entry for entry in handler.seen if entry[0] == "api.refusals" and "answered" in entry[1]
    ]
    assert refusal[2] == "refused-one"
    assert refusal[3] == logging.WARNING
    assert "403 forbidden" in refusal[1] and "vehicle:wheelchair_001" in refusal[1]
