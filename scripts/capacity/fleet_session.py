"""A frontend's role on ``/ws/v1/fleet``: subscribe to every vehicle, time each delivery.

Each ``location_update`` carries the record's timestamp, which is the location's intended
send time (whole milliseconds), so the delivery latency is arrival minus that time, whichever
generator process sent the location.
"""

from __future__ import annotations

import json
from contextlib import suppress

from scripts.capacity.clock import BenchClock, parse_wire, wire_text
from scripts.capacity.recorder import Recorder
from scripts.capacity.timetable import Window
from scripts.capacity.ws_client import SocketRefusedError, WsClient, WsClosedError

SUBSCRIBE_ALL = json.dumps({"type": "subscribe", "vehicle_ids": ["*"]})
MAX_FRAMES_BEFORE_SUBSCRIBED = 10_000


async def open_fleet_session(host: str, port: int, token: str) -> WsClient:
    """Connect, subscribe to ``*`` and wait for ``subscribed`` (the caller sets a deadline).

    Raises ``OSError`` or the errors of :mod:`scripts.capacity.ws_client` (``SocketRefusedError``
    for an error frame).
    """
    client = await WsClient.connect(host, port, f"/ws/v1/fleet?token={token}")
    try:
        with suppress(WsClosedError):  # a refusal may already be queued: read it below
            await client.send_text(SUBSCRIBE_ALL)
        for _ in range(MAX_FRAMES_BEFORE_SUBSCRIBED):
            frame = json.loads(await client.receive_text())
            kind = frame.get("type")
            if kind == "subscribed":
                return client
            if kind == "error":
                raise SocketRefusedError(str(frame.get("code")))
            if kind == "ping":
                await client.send_text(
                    json.dumps({"type": "pong", "timestamp": frame.get("timestamp")})
                )
        raise SocketRefusedError("no_subscribed_answer")
    except BaseException:
        await client.aclose()
        raise


class FleetSession:
    """A subscribed frontend; :meth:`serve` counts and times location deliveries."""

    def __init__(self, client: WsClient, *, clock: BenchClock, recorder: Recorder) -> None:
        self.client = client
        self._clock = clock
        self._recorder = recorder
        self.window = Window(0, 0)
        """The measured window (set once the step's start is known)."""
        self.closing = False
        self.last_frame = clock.now()
        """Bench time of the last frame received."""

    async def serve(self) -> None:
        """Read frames until the socket closes (blocks; cancel to stop).

        Counts ``delivered`` and samples ``delivery`` latency for locations intended inside
        the measured window; answers pings; an unexpected close counts as an error.
        """
        recorder = self._recorder
        while True:
            try:
                text = await self.client.receive_text()
            except WsClosedError as error:
                if not self.closing:
                    recorder.error("", f"session_dropped_{error.code}")
                return
            self.last_frame = self._clock.now()
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "location_update":
                arrived_ms = self._clock.now() * 1000
                try:
                    intended_ms = round(parse_wire(str(frame.get("timestamp"))) * 1000)
                except ValueError:
                    recorder.error("", "session_bad_timestamp")
                    continue
                if self.window.counts(intended_ms):
                    recorder.count("delivered")
                    recorder.sample("delivery", arrived_ms - intended_ms)
            elif kind == "ping":
                now_ms = round(self._clock.now() * 1000)
                with suppress(WsClosedError):
                    await self.client.send_text(
                        json.dumps({"type": "pong", "timestamp": wire_text(now_ms)})
                    )

    async def aclose(self) -> None:
        """Close the socket normally (bounded, never raises)."""
        self.closing = True
        await self.client.aclose()
