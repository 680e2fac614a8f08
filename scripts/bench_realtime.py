"""Realtime benchmarks over the public WebSocket API: command round trip and fan-out latency.

    python -m scripts.bench_realtime commands --count 1000
    python -m scripts.bench_realtime fanout --sessions 50 --vehicles 100 --seconds 30

``commands``: one operator on /ws/v1/fleet sends configure commands to one vehicle whose
socket acknowledges each at once; the figure is frontend send → ``command_status`` applied
back at the frontend. ``fanout``: ``tvm-hub simulate --vehicles N`` drives the hub while
``--sessions`` frontends subscribed to ``*`` measure each location event's delay from the
record's timestamp (set by the simulator when it sent the report) to its arrival. Starts its
own hub on an embedded database unless ``--url`` is given. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import trio
from trio_websocket import open_websocket_url

from scripts.bench_common import ADMIN, admin_headers, hub_process, percentile, vehicle_token

COMMAND_SPACING = 0.025  # 40 commands per second at most


def _ws(url: str) -> str:
    return url.replace("http://", "ws://").replace("https://", "wss://")


async def command_round_trips(url: str, count: int) -> list[float]:
    """Send ``count`` commands one after another; return each round trip in seconds."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        admin = await admin_headers(client)
        vehicle_id = f"bench_cmd_{int(time.time())}"
        token = await vehicle_token(client, admin, vehicle_id)
    operator_token = admin["Authorization"].removeprefix("Bearer ")
    timings: list[float] = []
    async with (
        open_websocket_url(f"{_ws(url)}/ws/v1/vehicle/{vehicle_id}?token={token}") as vehicle,
        open_websocket_url(f"{_ws(url)}/ws/v1/fleet?token={operator_token}") as frontend,
        trio.open_nursery() as nursery,
    ):
        await vehicle.get_message()  # welcome

        async def acknowledge() -> None:
            while True:
                frame = json.loads(await vehicle.get_message())
                if frame.get("type") == "ping":
                    await vehicle.send_message(json.dumps({"type": "pong"}))
                elif "command_id" in frame:
                    ack = {
                        "type": "command_ack",
                        "command_id": frame["command_id"],
                        "status": "applied",
                        "updated_config": frame["config_updates"],
                    }
                    await vehicle.send_message(json.dumps(ack))

        nursery.start_soon(acknowledge)
        next_send = trio.current_time()
        for index in range(count):
            # Stay under the socket's flood limit (50 frames/s sustained closes 4003).
            await trio.sleep_until(next_send)
            next_send = trio.current_time() + COMMAND_SPACING
            command_id = f"cmd_bench_{index}_{int(time.time() * 1000)}"
            command = {
                "type": "configure",
                "vehicle_id": vehicle_id,
                "command_id": command_id,
                "config_updates": {"audio_volume": index % 100},
            }
            started = time.perf_counter()
            await frontend.send_message(json.dumps(command))
            while True:
                frame = json.loads(await frontend.get_message())
                if frame.get("command_id") == command_id and frame.get("status") == "applied":
                    break
            timings.append(time.perf_counter() - started)
        nursery.cancel_scope.cancel()
    return timings


async def fanout_delays(url: str, sessions: int, seconds: float) -> tuple[list[float], int]:
    """Collect location-event delays at ``sessions`` frontends subscribed to everything."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = (await admin_headers(client))["Authorization"].removeprefix("Bearer ")
    delays: list[float] = []
    connected = 0

    async def session() -> None:
        nonlocal connected
        async with open_websocket_url(f"{_ws(url)}/ws/v1/fleet?token={token}") as frontend:
            await frontend.send_message(json.dumps({"type": "subscribe", "vehicle_ids": ["*"]}))
            connected += 1
            while True:
                frame = json.loads(await frontend.get_message())
                if frame.get("type") == "ping":
                    await frontend.send_message(json.dumps({"type": "pong"}))
                elif frame.get("type") == "location_update":
                    sent = datetime.strptime(frame["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
                    arrived = datetime.now(UTC).replace(tzinfo=None)
                    delays.append((arrived - sent).total_seconds())

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(sessions):
                nursery.start_soon(session)
    return delays, connected


def run_simulator(url: str, vehicles: int, seconds: float) -> subprocess.Popen[bytes]:
    """``tvm-hub simulate`` as a subprocess against ``url``."""
    env = {**os.environ, "TVM_ADMIN_USERNAME": ADMIN[0], "TVM_ADMIN_PASSWORD": ADMIN[1]}
    command = [
        sys.executable,
        "-m",
        "api.cli",
        "simulate",
        "--vehicles",
        str(vehicles),
        "--url",
        url,
        "--duration",
        str(int(seconds)),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def _milliseconds(values: list[float]) -> str:
    p50, p95, p99 = (percentile(values, f) * 1000 for f in (0.5, 0.95, 0.99))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {max(values) * 1000:.1f} ms"


def report_commands(url: str, count: int) -> None:
    """Print the command round-trip figures."""
    timings = trio.run(command_round_trips, url, count)
    print(
        f"command round trip (frontend → vehicle → ack → frontend), {len(timings)} commands: "
        + _milliseconds(timings)
    )


def report_fanout(url: str, sessions: int, vehicles: int, seconds: float, warmup: float) -> None:
    """Print the fan-out delay figures."""
    simulator = run_simulator(url, vehicles, seconds + warmup + 10)
    try:
        time.sleep(warmup)  # vehicles register, log in and start reporting
        delays, connected = trio.run(fanout_delays, url, sessions, seconds)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    if not delays:
        print("fan-out: no location events arrived")
        return
    expected = connected * vehicles * seconds
    print(
        f"fan-out to {connected} sessions subscribed to '*' while {vehicles} simulated vehicles "
        f"run, {len(delays)} deliveries in {seconds:.0f} s: {_milliseconds(delays)} "
        f"(from the report's timestamp; includes the REST commit); {len(delays) / expected:.0%} "
        "of the 1 Hz locations all vehicles would send"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["commands", "fanout"])
    parser.add_argument("--url")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=45.0, help="seconds for vehicles to log in")
    arguments = parser.parse_args()

    def run(url: str) -> None:
        if arguments.mode == "commands":
            report_commands(url, arguments.count)
        else:
            report_fanout(
                url, arguments.sessions, arguments.vehicles, arguments.seconds, arguments.warmup
            )

    if arguments.url:
        run(arguments.url)
        return
    with hub_process(rate_limits=arguments.mode == "fanout") as url:
        run(url)


if __name__ == "__main__":
    main()
