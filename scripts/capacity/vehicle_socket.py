"""A vehicle's WebSocket role: sends location frames, matches their acks, answers the hub.

:func:`open_vehicle_socket` connects ``/ws/v1/vehicle/{id}?token=…`` and waits for
``welcome``. :class:`VehicleSocket` then sends ``location`` frames on the open-loop schedule
and, in :meth:`VehicleSocket.serve` (the socket's only reader), matches each
``telemetry_ack`` to its frame by timestamp, charges an ``error`` frame to the oldest frame
still waiting (the hub answers a vehicle's frames in order), answers ``ping`` with ``pong`` and
hands commands to a handler (default: acknowledge at once).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import trio

from scripts.capacity.clock import BenchClock, wire_text
from scripts.capacity.plan import Credential
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding, for_each_bounded
from scripts.capacity.timetable import Window
from scripts.capacity.ws_client import SocketRefusedError, WsClient, WsClosedError

CommandHandler = Callable[["VehicleSocket", dict[str, Any]], Awaitable[None]]
CLOSED_BY_US = 1000


async def open_vehicle_socket(host: str, port: int, credential: Credential) -> WsClient:
    """Connect a vehicle's socket and read its ``welcome`` (blocks; the caller sets a deadline).

    Raises ``OSError`` or the errors of :mod:`scripts.capacity.ws_client` (``WsHandshakeError``,
    ``WsClosedError``, ``SocketRefusedError`` for an error frame).
    """
    target = f"/ws/v1/vehicle/{credential.vehicle_id}?token={credential.token}"
    client = await WsClient.connect(host, port, target)
    try:
        frame = json.loads(await client.receive_text())
        if frame.get("type") != "welcome":
            raise SocketRefusedError(str(frame.get("code") or frame.get("type")))
    except BaseException:
        await client.aclose()
        raise
    return client


def connect_error_kind(error: BaseException) -> str:
    """A short error kind for a failed connect, for the error breakdown."""
    if isinstance(error, SocketRefusedError):
        return f"refused_{error.code}"
    if isinstance(error, WsClosedError):
        return f"closed_{error.code}"
    code = getattr(error, "status", None)
    if code is not None:
        return f"upgrade_{code}"
    return f"connect_{type(error).__name__}"


def location_frame_template(index: int) -> tuple[str, str]:
    """The text around the timestamp of vehicle ``index``'s ``location`` frame."""
    latitude = 35.68 + (index % 1000) / 100_000
    longitude = 139.76 + (index // 1000) / 100_000
    return (
        '{"type":"location","timestamp":"',
        f'","location":{{"latitude":{latitude:.6f},"longitude":{longitude:.6f},'
        '"heading":90.0,"speed":0.8,"accuracy":0.1}}',
    )


class VehicleSocket:
    """One connected vehicle. :meth:`serve` must run for acks and pings to be handled."""

    def __init__(
        self,
        client: WsClient,
        credential: Credential,
        *,
        clock: BenchClock,
        recorder: Recorder,
        timeout: float,
        outstanding: Outstanding,
        on_command: CommandHandler | None = None,
        prefix: str = "",
    ) -> None:
        self.client = client
        self.credential = credential
        self._clock = clock
        self._recorder = recorder
        self.window = Window(0, 0)
        """The measured window (set once the step's start is known)."""
        self._timeout_ms = timeout * 1000
        self._outstanding = outstanding
        self._on_command = on_command or acknowledge_command
        self._prefix = prefix
        self._head, self._tail = location_frame_template(credential.index)
        self._pending: dict[str, tuple[int, bool]] = {}
        self._order: deque[str] = deque()
        self.closing = False

    @property
    def waiting(self) -> int:
        """Location frames sent and not yet answered."""
        return len(self._pending)

    async def send_location(self, intended_ms: int) -> None:
        """Send the location frame intended at ``intended_ms`` (its timestamp carries it).

        Blocks while the socket's send buffer is full. A closed socket counts as an error.
        """
        counted = self.window.counts(intended_ms)
        stamp = wire_text(intended_ms)
        if counted:
            self._recorder.count(self._prefix + "sent")
            self._recorder.sample(self._prefix + "lag", self._clock.now() * 1000 - intended_ms)
        self._pending[stamp] = (intended_ms, counted)
        self._order.append(stamp)
        self._outstanding.add()
        try:
            await self.client.send_text(self._head + stamp + self._tail)
        except WsClosedError as error:
            if self._pending.pop(stamp, None) is not None:
                self._outstanding.remove()
                if counted:
                    self._recorder.error(self._prefix, f"send_closed_{error.code}")

    async def send_json(self, frame: dict[str, Any]) -> None:
        """Send any frame (acks, pongs); a closed socket is ignored here (``serve`` sees it)."""
        with suppress(WsClosedError):
            await self.client.send_text(json.dumps(frame))

    async def serve(self) -> None:
        """Read and handle frames until the socket closes (blocks; cancel to stop reading).

        A close the benchmark did not ask for counts as an error (``dropped_<code>``) when it
        happens inside the measured window.
        """
        try:
            while True:
                try:
                    text = await self.client.receive_text()
                except WsClosedError as error:
                    if not self.closing and self.window.counts(round(self._clock.now() * 1000)):
                        self._recorder.error(self._prefix, f"dropped_{error.code}")
                    return
                await self._handle(json.loads(text))
        finally:
            self.give_up()

    def give_up(self) -> None:
        """Count every frame still waiting as timed out (at the end of the step)."""
        lost = sum(1 for _, counted in self._pending.values() if counted)
        if lost:
            self._recorder.count(self._prefix + "timeouts", lost)
        self._outstanding.remove(len(self._pending))
        self._pending.clear()
        self._order.clear()

    async def aclose(self) -> None:
        """Close the socket normally (bounded, never raises)."""
        self.closing = True
        await self.client.aclose(CLOSED_BY_US)

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "telemetry_ack":
            self._answered(str(frame.get("timestamp")))
        elif kind == "ping":
            self._recorder.count("pings_answered")
            await self.send_json({"type": "pong", "timestamp": wire_text(self._now_ms())})
        elif kind == "error":
            self._refused(str(frame.get("code")))
        elif kind in ("pong", "welcome"):
            pass
        elif "command_id" in frame:
            await self._on_command(self, frame)

    def _now_ms(self) -> int:
        return round(self._clock.now() * 1000)

    def _answered(self, stamp: str) -> None:
        entry = self._pending.pop(stamp, None)
        if entry is None:
            return
        self._outstanding.remove()
        intended_ms, counted = entry
        if not counted:
            return
        latency = self._clock.now() * 1000 - intended_ms
        if latency > self._timeout_ms:
            self._recorder.count(self._prefix + "timeouts")
            return
        self._recorder.count(self._prefix + "answered")
        self._recorder.sample(self._prefix + "latency", latency)

    def _refused(self, code: str) -> None:
        while self._order:
            stamp = self._order.popleft()
            entry = self._pending.pop(stamp, None)
            if entry is not None:
                self._outstanding.remove()
                if entry[1]:
                    self._recorder.error(self._prefix, f"ws_error_{code}")
                return
        if self.window.counts(self._now_ms()):
            self._recorder.error(self._prefix, f"ws_error_{code}")


async def acknowledge_command(vehicle: VehicleSocket, frame: dict[str, Any]) -> None:
    """The default vehicle: executes an emergency stop, accepts anything else."""
    status = "executed" if frame.get("type") == "emergency_stop" else "accepted"
    await vehicle.send_json(
        {"type": "command_ack", "command_id": frame["command_id"], "status": status}
    )


async def close_all(sockets: list[VehicleSocket], limit: int) -> None:
    """Close ``sockets`` at most ``limit`` at a time (each close is bounded to 1 s)."""

    async def close(vehicle: VehicleSocket) -> None:
        await vehicle.aclose()

    with trio.CancelScope(shield=True):
        await for_each_bounded(sockets, close, limit)
