"""The capacity benchmark spreads its load over several hubs as documented, and its probe
walks a hub's process tree (pure logic: no hub, no processes started)."""

from __future__ import annotations

from scripts.capacity.plan import Credential, StepPlan, Timing
from scripts.capacity.procstats import ServerProbe, descendants
from scripts.capacity.runner import RunnerSettings, Server, StepRequest, worker_plans


def plan(ports: tuple[int, ...] = (), session_base: int = 0) -> StepPlan:
    return StepPlan(
        mode="fanout",
        host="127.0.0.1",
        port=ports[0] if ports else 9000,
        worker=0,
        run_id="r",
        population=0,
        vehicles=(),
        timing=Timing(),
        ports=ports,
        session_base=session_base,
    )


def test_one_hub_means_every_role_uses_its_port() -> None:
    one = plan()
    assert one.hub_ports == (9000,)
    assert {one.vehicle_port(i) for i in range(5)} == {9000}
    assert {one.session_port(j) for j in range(5)} == {9000}
    assert {one.operator_port(i) for i in range(5)} == {9000}
    assert one.host_header == one.host_header_for(9000) == "127.0.0.1:9000"


def test_vehicles_sessions_and_stops_are_spread_over_the_hubs() -> None:
    three = plan((7000, 7001, 7002))
    assert [three.vehicle_port(i) for i in range(4)] == [7000, 7001, 7002, 7000]
    assert [three.session_port(j) for j in range(4)] == [7001, 7002, 7000, 7001]
    assert all(three.operator_port(i) != three.vehicle_port(i) for i in range(6))
    assert [plan((7000, 7001), session_base=3).session_port(j) for j in range(2)] == [7000, 7001]


def test_each_worker_numbers_its_sessions_after_the_previous_workers() -> None:
    server = Server("hub", "127.0.0.1", 7000, ServerProbe(1), ports=(7000, 7001))
    settings = RunnerSettings(
        Timing(), processes=3, run_id="r", estop_rate=1.0, connections_per_vehicle=1
    )
    vehicles = tuple(Credential(f"v{i}", "t") for i in range(6))
    plans = worker_plans(server, StepRequest("fanout", vehicles, sessions=7), settings)
    assert [(p.session_base, p.sessions) for p in plans] == [(0, 3), (3, 2), (5, 2)]
    assert all(p.ports == (7000, 7001) for p in plans)
    assert server.hubs == 2


def test_a_tree_is_the_roots_and_their_descendants_without_the_database() -> None:
    parent_of = {10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 30: 10, 31: 30, 40: 1}
    assert descendants([10], parent_of, exclude=None) == {10, 11, 12, 13, 30, 31}
    assert descendants([10, 20], parent_of, exclude=30) == {10, 11, 12, 13, 20}
