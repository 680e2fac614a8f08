"""Commands over REST (CONTRACT §6.3): validation, delivery to the vehicle socket, acks, the
offline queue, timeouts and the fleet-wide emergency stop.

A test plays the vehicle on a real socket and the operator over httpx against one hub with its
own database. The REST call that waits for the vehicle's answer runs in a task while the test
reads and acknowledges the command on the socket.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import trio
from trio_websocket import WebSocketConnection

from tests.integration.harness import (
    RunningHub,
    Vehicle,
    guarded_hub,
    mission_body,
    status_body,
    timestamp,
    until,
)
from tests.integration.test_vehicle_socket import (
    db_fetch,
    open_socket,
    ping_pong,
    receive,
    send,
    welcomed_socket,
)

VEHICLE_ID = "wheelchair_001"
T = TypeVar("T")
ACK_TIMEOUT = 1.0  # seconds; the hub's default is 5


def dispatch(mission_id: str = "mission_67890", **fields: Any) -> dict[str, Any]:
    """A valid dispatch command body."""
    body: dict[str, Any] = {
        "type": "dispatch",
        "priority": "high",
        "mission": mission_body(mission_id),
    }
    body.update(fields)
    return body


def configure(**updates: Any) -> dict[str, Any]:
    """A configure command body."""
    return {"type": "configure", "config_updates": updates}


def cancel(mission_id: str) -> dict[str, Any]:
    """A cancel command body (never merged in the offline queue)."""
    return {"type": "cancel", "mission_id": mission_id, "reason": "user_requested"}


async def post_command(
    hub: RunningHub,
    body: dict[str, Any],
    *,
    vehicle_id: str = VEHICLE_ID,
    headers: dict[str, str] | None = None,
    wait: bool = True,
) -> httpx.Response:
    """POST /api/v1/vehicle/{vehicle_id}/commands as admin (or with ``headers``)."""
    return await hub.client.post(
        f"/api/v1/vehicle/{vehicle_id}/commands",
        params=None if wait else {"wait": "false"},
        json=body,
        headers=headers or hub.admin_headers,
    )


async def get_command(hub: RunningHub, command_id: str) -> dict[str, Any]:
    """GET /api/v1/commands/{id}."""
    answer = await hub.client.get(f"/api/v1/commands/{command_id}", headers=hub.admin_headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def eventually_status(hub: RunningHub, command_id: str, status: str) -> dict[str, Any]:
    """The stored command once it shows ``status``."""
    return await until(
        lambda: get_command(hub, command_id),
        lambda c: c["status"] == status,
        what=f"command {command_id} stored as {status}",
    )


async def while_vehicle_answers(
    request: Callable[[], Awaitable[httpx.Response]],
    vehicle: Callable[[], Awaitable[None]],
) -> httpx.Response:
    """Run the REST ``request`` while the ``vehicle`` coroutine plays its side of the socket."""
    answers: list[httpx.Response] = []

    async def call() -> None:
        answers.append(await request())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await vehicle()
    [answer] = answers
    return answer


async def answered(
    hub: RunningHub, ws: WebSocketConnection, body: dict[str, Any], status: str
) -> httpx.Response:
    """POST ``body`` and wait for its outcome, while the vehicle on ``ws`` receives the command
    (of ``body``'s type) and acknowledges it with ``status``."""

    async def vehicle_side() -> None:
        frame = await receive_command(ws, body["type"])
        await ack(ws, frame["command_id"], status)

    return await while_vehicle_answers(lambda: post_command(hub, body), vehicle_side)


async def ack(ws: WebSocketConnection, command_id: str, status: str, **fields: Any) -> None:
    """Send a command_ack."""
    await send(ws, {"type": "command_ack", "command_id": command_id, "status": status, **fields})


async def receive_command(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    """The next frame, which must be a command of ``kind``."""
    frame = await receive(ws)
    assert frame["type"] == kind, frame
    assert "vehicle_id" not in frame, frame  # vehicles are never sent the routing field
    return frame


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def registered_vehicle(hub: RunningHub) -> Vehicle:
    """Register the test's vehicle."""
    return await hub.register_vehicle(VEHICLE_ID)


# --- round trips ----------------------------------------------------------------------------


async def test_dispatch_round_trip_answers_with_the_vehicles_ack(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            body = dispatch(command_id="cmd_dispatch_1", timestamp=timestamp())
            arrival = timestamp(600)

            async def vehicle_side() -> None:
                frame = await receive_command(ws, "dispatch")
                assert frame["command_id"] == "cmd_dispatch_1"
                assert frame["timestamp"] == body["timestamp"]
                assert frame["priority"] == "high"
                assert frame["mission"]["mission_id"] == "mission_67890"
                assert frame["mission"]["pickup"]["action"] == "dock_wheelchair"
                await ack(ws, "cmd_dispatch_1", "accepted", estimated_arrival=arrival)

            answer = await while_vehicle_answers(lambda: post_command(hub, body), vehicle_side)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "command_id": "cmd_dispatch_1",
                "vehicle_id": VEHICLE_ID,
                "status": "accepted",
                "ack": {
                    "type": "command_ack",
                    "command_id": "cmd_dispatch_1",
                    "status": "accepted",
                    "estimated_arrival": arrival,
                },
            }
            # A repeated ack changes nothing; the socket carries on.
            await ack(ws, "cmd_dispatch_1", "accepted", estimated_arrival=arrival)
            await ping_pong(ws)

        stored = await eventually_status(hub, "cmd_dispatch_1", "accepted")
        assert stored["type"] == "dispatch"
        assert stored["vehicle_id"] == VEHICLE_ID
        assert stored["priority"] == "high"
        assert stored["sender"] == "admin"
        assert stored["ack"]["estimated_arrival"] == arrival
        assert stored["attempts"] == 1
        assert stored["sent_at"] is not None and stored["acked_at"] is not None
        [row] = await db_fetch(
            hub, "SELECT status, ack FROM commands WHERE command_id = $1", "cmd_dispatch_1"
        )
        assert row["status"] == "accepted"
        missions = await until(
            lambda: db_fetch(hub, "SELECT * FROM missions WHERE mission_id = $1", "mission_67890"),
            lambda rows: bool(rows) and rows[0]["status"] == "accepted",
            what="mission_67890 accepted",
        )
        [mission] = missions
        assert mission["vehicle_id"] == VEHICLE_ID
        assert mission["priority"] == "high"


async def test_wait_false_answers_at_once_and_the_status_follows(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            answer = await post_command(hub, configure(max_speed=0.8), wait=False)
            assert answer.status_code == 202, answer.text
            sent = answer.json()
            assert sent["status"] == "sent"
            assert sent["ack"] is None
            command_id = sent["command_id"]
            assert command_id.startswith("cmd_") and len(command_id) > 4

            frame = await receive_command(ws, "configure")
            assert frame["command_id"] == command_id
            assert frame["config_updates"] == {"max_speed": 0.8}
            await ack(ws, command_id, "applied", updated_config={"max_speed": 0.8})

            stored = await eventually_status(hub, command_id, "applied")
            assert stored["ack"]["updated_config"] == {"max_speed": 0.8}


async def test_command_ids_are_generated_and_never_reused(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        await registered_vehicle(hub)  # offline: every command is queued
        generated = await post_command(hub, configure(audio_volume=10))
        assert generated.status_code == 202, generated.text
        assert generated.json()["command_id"].startswith("cmd_")
        stop = await post_command(hub, {"type": "emergency_stop"})
        assert stop.status_code == 202, stop.text
        assert stop.json()["command_id"].startswith("cmd_ESTOP_")

        first = await post_command(hub, cancel("mission_1") | {"command_id": "cmd_mine_1"})
        assert first.status_code == 202, first.text
        assert first.json()["command_id"] == "cmd_mine_1"
        again = await post_command(hub, cancel("mission_2") | {"command_id": "cmd_mine_1"})
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "duplicate_command"
        stored = await get_command(hub, "cmd_mine_1")
        assert stored["payload"]["mission_id"] == "mission_1"


async def test_a_reused_id_is_refused_after_the_first_command_settled(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            body = configure(audio_volume=20) | {"command_id": "cmd_cfg_once"}
            first = await answered(hub, ws, body, "applied")
            assert first.status_code == 200 and first.json()["status"] == "applied"
            await eventually_status(hub, "cmd_cfg_once", "applied")

            again = await post_command(
                hub, configure(audio_volume=30) | {"command_id": "cmd_cfg_once"}
            )
            assert again.status_code == 409, again.text
            assert again.json()["error"] == "duplicate_command"
            await ping_pong(ws)  # nothing was sent to the vehicle
        stored = await get_command(hub, "cmd_cfg_once")
        assert stored["payload"]["config_updates"] == {"audio_volume": 20}


async def test_invalid_commands_are_refused_with_their_code(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            bad_pickup = dispatch()
            bad_pickup["mission"]["pickup"]["latitude"] = 91
            cases = [
                (configure(audio_volume=101), "invalid_command"),
                (configure(warp_drive=True), "invalid_command"),
                (bad_pickup, "invalid_location"),
                ({"type": "self_destruct"}, "invalid_command"),
                (dispatch(priority="whenever"), "invalid_enum"),
                (
                    configure(max_speed=1.0) | {"command_id": "not a command id"},
                    "invalid_command",
                ),
            ]
            for body, code in cases:
                answer = await post_command(hub, body)
                assert answer.status_code == 400, (body, answer.text)
                assert answer.json()["error"] == code, (body, answer.text)
            volume = (await post_command(hub, configure(audio_volume=101))).json()
            assert volume["field"] == "config_updates.audio_volume"
            assert volume["received_value"] == 101
            latitude = (await post_command(hub, bad_pickup)).json()
            assert latitude["field"] == "mission.pickup.latitude"
            assert latitude["received_value"] == 91

            await ping_pong(ws)  # none of them reached the vehicle
        assert await db_fetch(hub, "SELECT * FROM commands") == []
        assert await db_fetch(hub, "SELECT * FROM missions") == []


async def test_only_operators_and_admins_send_commands(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        viewer = await hub.create_user("vera", "viewer", "viewer-password-123")
        operator = await hub.create_user("otto", "operator", "operator-password-123")

        for token in (viewer, vehicle.token):
            refused = await post_command(hub, configure(max_speed=0.5), headers=bearer(token))
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "forbidden"
            stop = await hub.client.post(
                "/api/v1/fleet/emergency_stop",
                json={"vehicle_ids": ["*"]},
                headers=bearer(token),
            )
            assert stop.status_code == 403, stop.text
        assert await db_fetch(hub, "SELECT * FROM commands") == []

        # A viewer may read commands; an operator may send them.
        allowed = await post_command(hub, configure(max_speed=0.5), headers=bearer(operator))
        assert allowed.status_code == 202, allowed.text
        listed = await hub.client.get(
            f"/api/v1/vehicle/{VEHICLE_ID}/commands", headers=bearer(viewer)
        )
        assert listed.status_code == 200
        [item] = listed.json()["items"]
        assert item["sender"] == "otto"


async def test_resume_only_after_an_emergency_stop(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            refused = await post_command(hub, {"type": "resume"})
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"] == "invalid_command_state"
            await ping_pong(ws)  # the refused resume never reached the vehicle

            async def stop_side() -> None:
                frame = await receive_command(ws, "emergency_stop")
                assert frame["reason"] == "staff_initiated"
                assert frame["command_id"].startswith("cmd_ESTOP_")
                await ack(ws, frame["command_id"], "executed", stopped_at=timestamp())

            stopped = await while_vehicle_answers(
                lambda: post_command(hub, {"type": "emergency_stop"}), stop_side
            )
            assert stopped.status_code == 200, stopped.text
            assert stopped.json()["status"] == "executed"

            resumed = await answered(hub, ws, {"type": "resume"}, "accepted")
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["status"] == "accepted"


async def test_resume_is_allowed_while_the_vehicle_reports_emergency_stop(
    database_url: str,
) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        reported = await hub.post(vehicle, "status", status_body("emergency_stop"))
        assert reported.status_code == 200, reported.text
        queued = await post_command(hub, {"type": "resume"})
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued"


async def emergency_stop_audits(hub: RunningHub, count: int) -> list[dict[str, Any]]:
    """The audit rows of emergency stops, oldest first, once there are ``count`` of them."""
    return await until(
        lambda: db_fetch(
            hub, "SELECT * FROM audit_logs WHERE action = 'emergency_stop' ORDER BY audit_id"
        ),
        lambda rows: len(rows) >= count,
        what=f"{count} emergency stop audit rows",
    )


async def test_every_emergency_stop_is_audited(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        operator = await hub.create_user("otto", "operator", "operator-password-123")
        offline = await post_command(
            hub,
            {"type": "emergency_stop", "reason": "fire_alarm", "message": "Evacuate"},
            headers=bearer(operator),
        )
        assert offline.status_code == 202, offline.text
        [queued_audit] = await emergency_stop_audits(hub, 1)
        assert queued_audit["actor"] == "otto"
        assert queued_audit["actor_role"] == "operator"
        assert queued_audit["vehicle_id"] == VEHICLE_ID
        assert queued_audit["outcome"] == "queued"
        assert queued_audit["at"] is not None
        assert _details(queued_audit)["command_id"] == offline.json()["command_id"]
        assert _details(queued_audit)["payload"]["reason"] == "fire_alarm"

        async with open_socket(hub.base_url, VEHICLE_ID, vehicle.token) as ws:
            # (Whether the queued stop comes after the welcome, as it must, is checked by
            # test_queued_commands_are_delivered_after_welcome_stops_first.)
            first_two = {(f := await receive(ws))["type"]: f for _ in range(2)}
            assert set(first_two) == {"welcome", "emergency_stop"}, first_two
            frame = first_two["emergency_stop"]
            assert frame["reason"] == "fire_alarm" and frame["message"] == "Evacuate"
            await ack(ws, frame["command_id"], "executed")

            online = await answered(hub, ws, {"type": "emergency_stop"}, "executed")
            assert online.status_code == 200 and online.json()["status"] == "executed"

        audits = await emergency_stop_audits(hub, 2)
        assert len(audits) == 2
        online_audit = audits[1]
        assert online_audit["actor"] == "admin"
        assert online_audit["actor_role"] == "admin"
        assert online_audit["vehicle_id"] == VEHICLE_ID
        assert _details(online_audit)["command_id"] == online.json()["command_id"]
        # The outcome is the status when the record was written: sent, or executed if the
        # vehicle was quicker than the audit write.
        assert online_audit["outcome"] in ("sent", "executed")
        # The audit log is readable by admins over REST too.
        audit = await hub.client.get("/api/v1/admin/audit", headers=hub.admin_headers)
        assert sum(item["action"] == "emergency_stop" for item in audit.json()["items"]) == 2


async def test_an_emergency_stop_record_shows_its_send_and_its_answer(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            stop = await answered(hub, ws, {"type": "emergency_stop"}, "executed")
            assert stop.status_code == 200 and stop.json()["status"] == "executed"
        command_id = stop.json()["command_id"]
        stored = await until(
            lambda: get_command(hub, command_id),
            lambda c: c["acked_at"] is not None,
            what=f"the ack of {command_id} stored",
        )
        assert stored["status"] == "executed"
        assert stored["ack"]["status"] == "executed"
        assert stored["sent_at"] is not None, stored
        assert stored["attempts"] == 1, stored


def _details(audit_row: dict[str, Any]) -> dict[str, Any]:
    details = audit_row["details"]
    return json.loads(details) if isinstance(details, str) else details


# --- the offline queue ----------------------------------------------------------------------


async def test_queued_commands_are_delivered_after_welcome_stops_first(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        queued_ids = []
        for body in (
            configure(max_speed=0.5),
            dispatch("mission_a"),
            cancel("mission_a"),
            {"type": "emergency_stop", "reason": "first_stop"},
            {"type": "emergency_stop", "reason": "second_stop"},
        ):
            answer = await post_command(hub, body)
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == "queued"
            assert answer.json()["ack"] is None
            queued_ids.append(answer.json()["command_id"])
        for command_id in queued_ids:
            assert (await get_command(hub, command_id))["status"] == "queued"
        [mission] = await db_fetch(hub, "SELECT status FROM missions")
        assert mission["status"] == "dispatched"

        async with welcomed_socket(hub, vehicle) as ws:
            frames = [await receive(ws) for _ in range(5)]
            assert [f["type"] for f in frames] == [
                "emergency_stop",
                "emergency_stop",
                "configure",
                "dispatch",
                "cancel",
            ]
            assert [f.get("reason") for f in frames[:2]] == ["first_stop", "second_stop"]
            stops, others = queued_ids[3:], queued_ids[:3]
            assert [f["command_id"] for f in frames] == stops + others
            for frame in frames:
                status = {"emergency_stop": "executed", "configure": "applied"}.get(
                    frame["type"], "accepted"
                )
                await ack(ws, frame["command_id"], status)
            await ping_pong(ws)
        expected = ["applied", "accepted", "accepted", "executed", "executed"]
        for command_id, status in zip(queued_ids, expected, strict=True):
            await eventually_status(hub, command_id, status)


async def test_a_full_queue_drops_the_oldest(database_url: str) -> None:
    async with guarded_hub(database_url, guard=90) as hub:
        vehicle = await registered_vehicle(hub)
        ids = []
        for index in range(101):
            answer = await post_command(hub, cancel(f"mission_{index}"))
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == "queued"
            ids.append(answer.json()["command_id"])
        dropped = await eventually_status(hub, ids[0], "dropped")
        assert dropped["payload"]["mission_id"] == "mission_0"
        assert (await get_command(hub, ids[1]))["status"] == "queued"

        async with welcomed_socket(hub, vehicle) as ws:
            delivered = [await receive(ws) for _ in range(100)]
            assert [f["command_id"] for f in delivered] == ids[1:]
            await ping_pong(ws)  # the dropped one never comes


async def test_queued_configures_merge_into_one(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        older = await post_command(hub, configure(max_speed=0.5, audio_volume=10))
        newer = await post_command(hub, configure(audio_volume=75, ehmi_language="ja"))
        assert older.status_code == newer.status_code == 202
        older_id, newer_id = older.json()["command_id"], newer.json()["command_id"]

        async with welcomed_socket(hub, vehicle) as ws:
            frame = await receive_command(ws, "configure")
            assert frame["command_id"] == newer_id
            assert frame["config_updates"] == {
                "max_speed": 0.5,
                "audio_volume": 75,
                "ehmi_language": "ja",
            }
            await ping_pong(ws)  # one configure, not two
            await ack(ws, newer_id, "applied", updated_config=frame["config_updates"])
            await ping_pong(ws)
        # The older command's sender learns its keys were applied too.
        await eventually_status(hub, newer_id, "applied")
        await eventually_status(hub, older_id, "applied")


async def test_an_unacknowledged_command_is_sent_three_times_then_times_out(
    database_url: str,
) -> None:
    # A short ack timeout (TVM_COMMAND_ACK_TIMEOUT_SECONDS) keeps this to a few real seconds.
    async with guarded_hub(database_url, command_ack_timeout=ACK_TIMEOUT) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            body = configure(max_speed=0.3) | {"command_id": "cmd_silent"}
            seen: list[float] = []

            async def silent_vehicle() -> None:
                for _ in range(3):
                    frame = await receive(ws)
                    assert frame["type"] == "configure"
                    assert frame["command_id"] == "cmd_silent"
                    assert frame["config_updates"] == {"max_speed": 0.3}
                    seen.append(trio.current_time())

            started = trio.current_time()
            answer = await while_vehicle_answers(lambda: post_command(hub, body), silent_vehicle)
            waited = trio.current_time() - started
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "timeout"
            assert answer.json()["ack"] is None
            gaps = [later - earlier for earlier, later in itertools.pairwise(seen)]
            assert all(ACK_TIMEOUT * 0.9 < gap < ACK_TIMEOUT + 1.5 for gap in gaps), gaps
            assert 3 * ACK_TIMEOUT * 0.9 < waited < 3 * ACK_TIMEOUT + 3.0, waited
            with trio.move_on_after(ACK_TIMEOUT * 1.5):
                extra = await ws.get_message()
                raise AssertionError(f"a fourth send or other frame arrived: {extra}")
            # A late ack does not bring it back.
            await ack(ws, "cmd_silent", "applied")
            await ping_pong(ws)
        stored = await eventually_status(hub, "cmd_silent", "timeout")
        assert stored["attempts"] == 3
        assert stored["ack"] is None


# --- the fleet-wide stop and the command list -----------------------------------------------


async def test_fleet_emergency_stop_reports_each_vehicle(database_url: str) -> None:
    async with guarded_hub(database_url, command_ack_timeout=ACK_TIMEOUT) as hub:
        obedient = await hub.register_vehicle("wheelchair_001")
        await hub.register_vehicle("wheelchair_002")  # never connects
        silent = await hub.register_vehicle("wheelchair_003")  # connected, never answers
        async with (
            welcomed_socket(hub, obedient) as ws,
            welcomed_socket(hub, silent) as quiet,
        ):
            unanswered: list[dict[str, Any]] = []

            async def vehicles_side() -> None:
                frame = await receive_command(ws, "emergency_stop")
                assert frame["reason"] == "fire_alarm"
                await ack(ws, frame["command_id"], "executed")
                for _ in range(3):
                    unanswered.append(await receive_command(quiet, "emergency_stop"))

            answer = await while_vehicle_answers(
                lambda: hub.client.post(
                    "/api/v1/fleet/emergency_stop",
                    json={"reason": "fire_alarm", "vehicle_ids": ["*"]},
                    headers=hub.admin_headers,
                ),
                vehicles_side,
            )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [(r["vehicle_id"], r["status"]) for r in results] == [
            ("wheelchair_001", "executed"),
            ("wheelchair_002", "queued"),
            ("wheelchair_003", "timeout"),
        ]
        assert all(r["command_id"].startswith("cmd_ESTOP_") for r in results)
        assert results[0]["ack"]["status"] == "executed"
        assert {f["command_id"] for f in unanswered} == {results[2]["command_id"]}

        audits = await emergency_stop_audits(hub, 3)
        assert sorted(a["vehicle_id"] for a in audits) == [
            "wheelchair_001",
            "wheelchair_002",
            "wheelchair_003",
        ]
        assert {a["actor"] for a in audits} == {"admin"}
        alerts = await until(
            lambda: db_fetch(hub, "SELECT * FROM alerts WHERE kind = 'emergency_stop_unconfirmed'"),
            bool,
            what="an emergency_stop_unconfirmed alert",
        )
        [alert] = alerts
        assert alert["vehicle_id"] == "wheelchair_003"
        assert alert["severity"] == "critical"

        named = await hub.client.post(
            "/api/v1/fleet/emergency_stop",
            json={"vehicle_ids": ["wheelchair_002"]},
            headers=hub.admin_headers,
        )
        assert named.status_code == 200, named.text
        assert [(r["vehicle_id"], r["status"]) for r in named.json()["results"]] == [
            ("wheelchair_002", "queued")
        ]
        # A mistyped id must not keep the stop from the vehicles that exist.
        mixed = await hub.client.post(
            "/api/v1/fleet/emergency_stop",
            json={"vehicle_ids": ["wheelchair_404", "wheelchair_002"]},
            headers=hub.admin_headers,
        )
        assert mixed.status_code == 200, mixed.text
        outcomes = {r["vehicle_id"]: r for r in mixed.json()["results"]}
        assert outcomes["wheelchair_404"]["status"] == "failed"
        assert outcomes["wheelchair_404"]["error"] == "unknown_vehicle"
        assert outcomes["wheelchair_002"]["status"] == "queued"


async def test_a_vehicles_commands_are_listed_newest_first(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        await registered_vehicle(hub)
        await hub.register_vehicle("wheelchair_002")
        ids = []
        for offset, body in (
            (-3, cancel("mission_1")),
            (-2, dispatch("mission_2")),
            (-1, cancel("mission_3")),
        ):
            answer = await post_command(hub, body | {"timestamp": timestamp(offset)})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["command_id"])
        other = await post_command(hub, cancel("mission_x"), vehicle_id="wheelchair_002")
        assert other.status_code == 202

        listed = await hub.client.get(
            f"/api/v1/vehicle/{VEHICLE_ID}/commands", headers=hub.admin_headers
        )
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert [item["command_id"] for item in items] == ids[::-1]
        assert [item["type"] for item in items] == ["cancel", "dispatch", "cancel"]
        assert all(item["status"] == "queued" for item in items)
        limited = await hub.client.get(
            f"/api/v1/vehicle/{VEHICLE_ID}/commands",
            params={"limit": 2},
            headers=hub.admin_headers,
        )
        assert [item["command_id"] for item in limited.json()["items"]] == ids[:0:-1]
        missing = await hub.client.get(
            "/api/v1/commands/cmd_nothing_here", headers=hub.admin_headers
        )
        assert missing.status_code == 404


async def test_commands_for_unknown_or_other_vehicles_are_refused(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        await registered_vehicle(hub)
        answer = await post_command(hub, configure(max_speed=0.5), vehicle_id="wheelchair_404")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == "unknown_vehicle"
        mismatch = await post_command(
            hub, configure(max_speed=0.5) | {"vehicle_id": "wheelchair_002"}
        )
        assert mismatch.status_code == 400, mismatch.text
        assert mismatch.json()["error"] == "vehicle_id_mismatch"
        assert await db_fetch(hub, "SELECT * FROM commands") == []


async def test_a_disconnect_before_the_ack_requeues_the_command(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            sent = await post_command(hub, cancel("mission_9"), wait=False)
            assert sent.status_code == 202 and sent.json()["status"] == "sent"
            command_id = sent.json()["command_id"]
            await receive_command(ws, "cancel")
        await eventually_status(hub, command_id, "queued")
        async with welcomed_socket(hub, vehicle) as ws:
            again = await receive_command(ws, "cancel")
            assert again["command_id"] == command_id
            await ack(ws, command_id, "accepted")
            await eventually_status(hub, command_id, "accepted")


async def until_rows(dsn: str, sql: str) -> None:
    """Poll the database until ``sql`` returns a row (state outside the hub: no event)."""
    from storage.testing import fetch

    while not await trio.to_thread.run_sync(fetch, dsn, sql):  # noqa: ASYNC110
        await trio.sleep(0.01)


async def test_a_command_overtaken_by_an_emergency_stop_is_never_sent_after_it(
    database_url: str,
) -> None:
    """A dispatch whose row is still being written when staff press stop must not reach the
    vehicle after the stop (it could undo it): it is dropped and answered 409."""
    from storage.testing import execute, fetch

    hold_lock = (
        "DO $$ BEGIN LOCK TABLE commands IN ACCESS EXCLUSIVE MODE; PERFORM pg_sleep(1.0); END $$"
    )
    insert_waiting = (
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE 'INSERT INTO commands%'"
    )
    lock_held = (
        "SELECT 1 FROM pg_locks l JOIN pg_class c ON l.relation = c.oid"
        " WHERE c.relname = 'commands' AND l.mode = 'AccessExclusiveLock' AND l.granted"
    )
    async with guarded_hub(database_url) as hub:
        vehicle = await registered_vehicle(hub)
        async with welcomed_socket(hub, vehicle) as ws:
            answers: dict[str, httpx.Response] = {}

            async def post(name: str, body: dict[str, Any]) -> None:
                answers[name] = await hub.client.post(
                    f"/api/v1/vehicle/{VEHICLE_ID}/commands?wait=false",
                    json=body,
                    headers=hub.admin_headers,
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, execute, database_url, hold_lock)
                await until_rows(database_url, lock_held)  # the insert will have to wait
                nursery.start_soon(post, "dispatch", dispatch(command_id="cmd_overtaken"))
                await until_rows(database_url, insert_waiting)
                nursery.start_soon(
                    post, "stop", {"type": "emergency_stop", "command_id": "cmd_ESTOP_now"}
                )
                stop_frame = await receive_command(ws, "emergency_stop")
                assert stop_frame["command_id"] == "cmd_ESTOP_now"
            assert answers["stop"].status_code == 202, answers["stop"].text
            assert answers["dispatch"].status_code == 409, answers["dispatch"].text
            assert answers["dispatch"].json()["error"] == "invalid_command_state"
            with trio.move_on_after(1.0):
                frame = await receive(ws)
                assert frame.get("type") != "dispatch", frame
        rows = await trio.to_thread.run_sync(
            fetch,
            database_url,
            "SELECT command_id, status FROM commands ORDER BY command_id",
        )
        assert {r["command_id"]: r["status"] for r in rows}["cmd_overtaken"] == "dropped"
