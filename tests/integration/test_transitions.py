"""State and docking-phase rules on the live endpoints (CONTRACT §3), over HTTP.

A refused report answers 400 with the allowed successors and leaves nothing behind; the
vehicle's state is unchanged, so its next valid report is judged against the old state.
"""

from __future__ import annotations

from typing import Any

import trio

from tests.integration.harness import (
    RunningHub,
    Timeline,
    Vehicle,
    count,
    docking_body,
    running_hub,
    status_body,
)

STATES = ["idle", "navigating", "docking", "charging", "error", "emergency_stop"]
# A way to reach each state from idle through allowed transitions.
PATH_FROM_IDLE = {
    "idle": [],
    "navigating": ["navigating"],
    "docking": ["navigating", "docking"],
    "charging": ["charging"],
    "error": ["error"],
    "emergency_stop": ["emergency_stop"],
}


class Reporter:
    """Posts status and docking reports for one vehicle with increasing timestamps."""

    def __init__(self, hub: RunningHub, vehicle: Vehicle) -> None:
        self.hub = hub
        self.vehicle = vehicle
        self.now = Timeline()

    async def state(self, state: str) -> Any:
        return await self.hub.post(self.vehicle, "status", status_body(state, self.now()))

    async def phase(self, phase: str, **fields: Any) -> Any:
        return await self.hub.post(
            self.vehicle, "docking", docking_body(phase, self.now(), **fields)
        )

    async def accept_states(self, *states: str) -> None:
        for state in states:
            answer = await self.state(state)
            assert answer.status_code == 200, (self.vehicle.vehicle_id, state, answer.text)

    async def accept_phases(self, *phases: str) -> None:
        for phase in phases:
            answer = await self.phase(phase)
            assert answer.status_code == 200, (self.vehicle.vehicle_id, phase, answer.text)

    async def refuse_state(self, state: str) -> dict[str, Any]:
        before = await count(self.hub, "vehicle_status", self.vehicle.vehicle_id)
        answer = await self.state(state)
        assert answer.status_code == 400, (self.vehicle.vehicle_id, state, answer.text)
        assert answer.json()["error"] == "invalid_state_transition", answer.text
        assert await count(self.hub, "vehicle_status", self.vehicle.vehicle_id) == before
        return dict(answer.json())

    async def refuse_phase(self, phase: str) -> dict[str, Any]:
        before = await count(self.hub, "vehicle_docking", self.vehicle.vehicle_id)
        answer = await self.phase(phase)
        assert answer.status_code == 400, (self.vehicle.vehicle_id, phase, answer.text)
        assert answer.json()["error"] == "invalid_phase_transition", answer.text
        assert await count(self.hub, "vehicle_docking", self.vehicle.vehicle_id) == before
        return dict(answer.json())


async def reporter(hub: RunningHub, vehicle_id: str) -> Reporter:
    return Reporter(hub, await hub.register_vehicle(vehicle_id))


async def test_a_normal_mission_cycle_is_accepted(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            chair = await reporter(hub, "wheelchair_001")
            await chair.accept_states(
                "idle", "navigating", "docking", "charging", "idle", "idle", "charging", "idle"
            )
            assert await count(hub, "vehicle_status", "wheelchair_001") == 8


async def test_a_forbidden_transition_is_refused_and_changes_nothing(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            chair = await reporter(hub, "wheelchair_001")
            await chair.accept_states("idle")

            error = await chair.refuse_state("docking")
            assert error["details"] == {
                "from": "idle",
                "to": "docking",
                "allowed": ["idle", "navigating", "charging", "error", "emergency_stop"],
            }
            assert error["field"] == "state"
            assert error["received_value"] == "docking"

            # The refused report did not move the vehicle: it is still idle.
            await chair.accept_states("charging")
            error = await chair.refuse_state("navigating")
            assert error["details"]["from"] == "charging"
            assert error["details"]["allowed"] == ["idle", "charging", "error", "emergency_stop"]
            await chair.refuse_state("docking")
            await chair.accept_states("idle", "navigating")
            snapshot = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001", headers=hub.admin_headers
            )
            assert snapshot.json()["state"] == "navigating"


async def test_a_new_vehicle_accepts_any_first_state(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            for index, state in enumerate(("docking", "charging", "emergency_stop")):
                chair = await reporter(hub, f"wheelchair_{index:03d}")
                await chair.accept_states(state)


async def test_error_and_emergency_stop_are_allowed_from_any_state(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            chair = await reporter(hub, "wheelchair_001")
            await chair.accept_states("idle")
            for alarm in ("error", "emergency_stop"):
                for state in STATES:
                    await chair.accept_states(*PATH_FROM_IDLE[state])
                    answer = await chair.state(alarm)
                    assert answer.status_code == 200, (state, alarm, answer.text)
                    await chair.accept_states("idle")


async def test_emergency_stop_resumes_to_the_state_before_it_or_idle(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            navigating = await reporter(hub, "wheelchair_001")
            await navigating.accept_states("navigating", "emergency_stop")
            error = await navigating.refuse_state("docking")
            assert error["details"]["from"] == "emergency_stop"
            assert sorted(error["details"]["allowed"]) == sorted(
                ["idle", "navigating", "error", "emergency_stop"]
            )
            await navigating.refuse_state("charging")
            # A repeated stop report keeps the state to resume to.
            await navigating.accept_states("emergency_stop", "navigating", "docking")

            charging = await reporter(hub, "wheelchair_002")
            await charging.accept_states("charging", "emergency_stop")
            await charging.refuse_state("navigating")
            await charging.accept_states("idle")
            # Once resumed, the old state is no longer a way out of the next stop.
            await charging.accept_states("emergency_stop")
            await charging.refuse_state("charging")
            await charging.accept_states("idle")

            docking = await reporter(hub, "wheelchair_003")
            await docking.accept_states("navigating", "docking", "emergency_stop", "docking")


async def test_docking_phases_only_move_forward(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            chair = await reporter(hub, "wheelchair_001")
            await chair.accept_phases(
                "approaching",
                "marker_detection",
                "marker_detection",  # same phase
                "final_approach",  # skipping visual_servoing
                "success",
                "approaching",  # a new docking after success
                "visual_servoing",
                "failed",  # from any phase
                "approaching",  # a new docking after failure
                "failed",
                "failed",
                "approaching",
                "attachment",
                "attachment",
                "success",
                "success",
            )
            assert await count(hub, "vehicle_docking", "wheelchair_001") == 16

            backward = await reporter(hub, "wheelchair_002")
            await backward.accept_phases("approaching", "visual_servoing")
            error = await backward.refuse_phase("marker_detection")
            assert error["field"] == "phase"
            assert error["details"] == {
                "from": "visual_servoing",
                "to": "marker_detection",
                "allowed": ["visual_servoing", "final_approach", "attachment", "success", "failed"],
            }
            await backward.refuse_phase("approaching")
            # Still in visual_servoing: forward is fine.
            await backward.accept_phases("attachment", "success")
            error = await backward.refuse_phase("final_approach")
            assert error["details"]["allowed"] == ["approaching", "failed", "success"]

            first = await reporter(hub, "wheelchair_003")
            error = await first.refuse_phase("visual_servoing")
            assert error["details"]["from"] is None
            await first.accept_phases("approaching")


async def test_docking_success_only_with_phase_success(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            chair = await reporter(hub, "wheelchair_001")
            await chair.accept_phases("approaching", "attachment")
            for phase in ("attachment", "failed", "final_approach"):
                answer = await chair.phase(phase, docking_success=True)
                assert answer.status_code == 400, (phase, answer.text)
                assert answer.json()["field"] == "docking_success"
            assert await count(hub, "vehicle_docking", "wheelchair_001") == 2
            answer = await chair.phase("success", docking_success=True)
            assert answer.status_code == 200, answer.text
