"""run_socket: heartbeat, invalid-message and flood limits, and who ends the socket (§6.1).

The peer is a script of inbound frames at virtual times; everything the hub writes is
recorded with the virtual time it went out. Times are relative to the start of each test.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

import pytest
import trio
import trio.testing

from actors.sockets.connection import (
    FLOODING,
    HEARTBEAT_TIMEOUT,
    INVALID_MESSAGE,
    NORMAL,
    PeerGoneError,
    SocketPolicy,
    _FloodMeter,
    run_socket,
)
from actors.sockets.outbound import OutboundLink
from hub.contract.validation import decode_json
from hub.errors import ContractError, InvalidInputError

GUARD = 600.0  # virtual seconds: every test here runs on autojump_clock

PONG = json.dumps({"type": "pong", "timestamp": "2025-12-16T10:30:45.123Z"})
LOCATION = json.dumps({"type": "location", "timestamp": "2025-12-16T10:30:45.123Z"})
NOT_JSON = "{not json"
GONE = None  # in a script: the peer closes the socket at that time


class ScriptedPeer:
    """The far end: sends ``(time, raw)`` frames at those virtual times, records what it gets.

    After the script the peer stays connected and silent. ``send_seconds`` is how long each
    write takes (a peer that reads slowly).
    """

    def __init__(self, script: Iterable[tuple[float, str | None]], send_seconds: float = 0.0):
        self.start = trio.current_time()
        self._script = deque(script)
        self._send_seconds = send_seconds
        self.received: list[tuple[float, dict[str, Any]]] = []

    def now(self) -> float:
        return trio.current_time() - self.start

    async def receive(self) -> str | bytes:
        if not self._script:
            await trio.sleep_forever()
        at, raw = self._script.popleft()
        await trio.sleep_until(self.start + at)
        if raw is None:
            raise PeerGoneError
        return raw

    async def send(self, text: str) -> None:
        if self._send_seconds:
            await trio.sleep(self._send_seconds)
        self.received.append((self.now(), json.loads(text)))

    def frames(self, frame_type: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, frame) for at, frame in self.received if frame["type"] == frame_type]

    def times(self, frame_type: str) -> list[float]:
        return [at for at, _ in self.frames(frame_type)]


class Handler:
    """``on_frame``: JSON objects of a known type are fine, anything else is a ContractError."""

    KNOWN = frozenset({"ping", "pong", "command_ack", "location", "status", "battery"})

    def __init__(self, peer: ScriptedPeer) -> None:
        self._peer = peer
        self.handled: list[tuple[float, str]] = []

    async def __call__(self, raw: str | bytes) -> None:
        frame = decode_json(raw)
        if not isinstance(frame, dict) or frame.get("type") not in self.KNOWN:
            raise InvalidInputError("invalid_message", "Unknown message type", field="type")
        self.handled.append((self._peer.now(), frame["type"]))


async def _serve(
    peer: ScriptedPeer,
    link: OutboundLink | None = None,
    policy: SocketPolicy | None = None,
) -> tuple[tuple[int, str], float, Handler]:
    """Run the socket to its end: ``((code, reason), end time, handler)``."""
    handler = Handler(peer)
    result = await run_socket(
        link if link is not None else OutboundLink(),
        receive=peer.receive,
        send=peer.send,
        on_frame=handler,
        policy=policy or SocketPolicy(),
    )
    return result, peer.now(), handler


# --- heartbeat ----------------------------------------------------------------------------


async def test_a_silent_peer_is_pinged_at_30_s_and_closed_4008_at_40_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([])
        result, ended_at, _ = await _serve(peer)
    assert result == (HEARTBEAT_TIMEOUT, "heartbeat_timeout") == (4008, "heartbeat_timeout")
    assert ended_at == 40.0
    assert [frame["type"] for _, frame in peer.received] == ["ping"]
    assert peer.times("ping") == [30.0]
    assert set(peer.frames("ping")[0][1]) == {"type", "timestamp"}


async def test_a_pong_keeps_the_socket_open_and_pings_keep_their_30_s_rhythm(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(35, PONG)])
        result, ended_at, _ = await _serve(peer)
    assert peer.times("ping") == [30.0, 60.0]
    assert result == (4008, "heartbeat_timeout")
    assert ended_at == 70.0


async def test_a_peer_answering_every_ping_stays_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(31, PONG), (61, PONG), (91, PONG), (100, GONE)])
        result, ended_at, _ = await _serve(peer)
    assert peer.times("ping") == [30.0, 60.0, 90.0]
    assert result == (NORMAL, "peer closed")
    assert ended_at == 100.0


async def test_any_inbound_message_after_the_ping_counts_as_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(39, LOCATION), (50, GONE)])
        result, ended_at, handler = await _serve(peer)
    assert handler.handled == [(39.0, "location")]
    assert peer.times("ping") == [30.0]
    assert result == (1000, "peer closed")
    assert ended_at == 50.0


async def test_an_invalid_message_also_counts_as_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(35, NOT_JSON), (50, GONE)])
        result, ended_at, _ = await _serve(peer)
    assert result == (1000, "peer closed")
    assert ended_at == 50.0


async def test_a_message_before_the_ping_does_not_answer_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(29, LOCATION)])
        result, ended_at, _ = await _serve(peer)
    assert peer.times("ping") == [30.0]
    assert result == (4008, "heartbeat_timeout")
    assert ended_at == 40.0


async def test_the_heartbeat_timers_come_from_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(6, PONG)])
        result, ended_at, _ = await _serve(
            peer, policy=SocketPolicy(ping_interval=5, pong_timeout=2)
        )
    assert peer.times("ping") == [5.0, 10.0]
    assert result == (4008, "heartbeat_timeout")
    assert ended_at == 12.0


# --- invalid messages ---------------------------------------------------------------------


async def test_three_invalid_messages_in_a_row_get_three_errors_then_close_4002(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(1, NOT_JSON), (2, '{"type": "teleport"}'), (3, "[]")])
        result, ended_at, _ = await _serve(peer)
    assert result == (INVALID_MESSAGE, "invalid_message") == (4002, "invalid_message")
    assert ended_at == 3.0
    errors = peer.frames("error")
    assert [at for at, _ in errors] == [1.0, 2.0, 3.0]
    assert [frame["code"] for _, frame in errors] == [
        "invalid_json",
        "invalid_message",
        "invalid_message",
    ]
    assert errors[1][1]["field"] == "type"
    assert all(frame["message"] for _, frame in errors)


async def test_a_valid_message_resets_the_count_of_invalid_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer(
            [(1, NOT_JSON), (2, LOCATION), (3, NOT_JSON), (4, NOT_JSON), (10, GONE)]
        )
        result, ended_at, handler = await _serve(peer)
    assert peer.times("error") == [1.0, 3.0, 4.0]
    assert handler.handled == [(2.0, "location")]
    assert result == (1000, "peer closed")
    assert ended_at == 10.0


async def test_the_third_error_goes_out_before_4002_even_when_the_peer_reads_slowly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each write takes 1 s: when the third invalid frame arrives at 0.5 s, the first error is
    # still being written. The socket must neither cut that write short nor lose the code.
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(0, NOT_JSON), (0.25, NOT_JSON), (0.5, NOT_JSON)], send_seconds=1)
        result, ended_at, _ = await _serve(peer)
    assert peer.times("error") == [1.0, 2.0, 3.0]
    assert result == (4002, "invalid_message")
    assert ended_at == 3.0


async def test_a_peer_that_stopped_reading_is_closed_4002_without_its_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first error's write never finishes: the close waits 5 s for it, no longer.
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([(0, NOT_JSON), (0.25, NOT_JSON), (0.5, NOT_JSON)], send_seconds=1000)
        result, ended_at, _ = await _serve(peer)
    assert result == (4002, "invalid_message")
    assert ended_at == 5.5
    assert peer.received == []


# --- flood --------------------------------------------------------------------------------


def _burst(second: int, count: int) -> list[tuple[float, str | None]]:
    # count messages spread over one second (1/64 s apart: exact in binary floating point)
    return [(second + index / 64, PONG) for index in range(count)]


async def test_51_messages_a_second_for_5_seconds_closes_4003(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        script = [item for second in range(6) for item in _burst(second, 51)]
        peer = ScriptedPeer(script)
        result, ended_at, handler = await _serve(peer)
    assert result == (FLOODING, "rate_limit") == (4003, "rate_limit")
    assert ended_at == 4 + 50 / 64  # the 51st message of the 5th busy second
    assert len(handler.handled) == 5 * 51 - 1  # the message that tipped it is not handled


async def test_one_busy_second_then_quiet_stays_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        peer = ScriptedPeer([*_burst(0, 51), (10, GONE)])
        result, ended_at, handler = await _serve(peer)
    assert result == (1000, "peer closed")
    assert ended_at == 10.0
    assert len(handler.handled) == 51


async def test_exactly_50_messages_a_second_is_allowed_indefinitely(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        script = [item for second in range(8) for item in _burst(second, 50)]
        peer = ScriptedPeer([*script, (9, GONE)])
        result, _, handler = await _serve(peer)
    assert result == (1000, "peer closed")
    assert len(handler.handled) == 8 * 50


async def test_busy_seconds_must_be_consecutive(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        busy = [0, 1, 2, 3, 5, 6, 7, 8]  # second 4 is quiet: two runs of 4 busy seconds
        script = [item for second in busy for item in _burst(second, 60)]
        peer = ScriptedPeer([*script, (9.5, GONE)])
        result, ended_at, _ = await _serve(peer)
    assert result == (1000, "peer closed")
    assert ended_at == 9.5


def test_flood_meter_counts_whole_seconds_of_trio_time() -> None:
    meter = _FloodMeter(limit=50, seconds_allowed=5)
    for second in range(4):
        assert not any([meter.arrived(second + index / 100) for index in range(51)])
    assert meter.busy_seconds == 4
    assert not any([meter.arrived(4 + index / 100) for index in range(50)])
    assert meter.arrived(4.5)  # the 51st message of the 5th busy second


def test_flood_meter_forgets_a_run_after_a_calm_second() -> None:
    meter = _FloodMeter(limit=50, seconds_allowed=5)
    for second in range(4):
        for index in range(51):
            meter.arrived(second + index / 100)
    meter.arrived(4.0)  # second 4: one message only
    for index in range(51):
        meter.arrived(5 + index / 100)  # second 5 starts a new run
    assert meter.busy_seconds == 1


# --- who ends the socket ------------------------------------------------------------------


async def test_the_peer_closing_ends_the_socket_with_1000(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        peer = ScriptedPeer([(3, LOCATION), (7, GONE)])
        result, ended_at, handler = await _serve(peer, link)
    assert result == (NORMAL, "peer closed") == (1000, "peer closed")
    assert ended_at == 7.0
    assert handler.handled == [(3.0, "location")]
    assert link.closed
    assert not link.send_nowait({"type": "telemetry_ack"})


async def test_a_hub_side_close_ends_the_socket_with_its_code(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        peer = ScriptedPeer([])
        outcome: list[tuple[tuple[int, str], float]] = []

        async def serve() -> None:
            result, ended_at, _ = await _serve(peer, link)
            outcome.append((result, ended_at))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await trio.sleep(12)
            link.close(4009, "replaced")
    assert outcome == [((4009, "replaced"), 12.0)]


async def test_frames_queued_on_the_link_are_written_to_the_peer_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        peer = ScriptedPeer([(5, GONE)])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve, peer, link)
            await trio.sleep(1)
            link.send_nowait({"type": "telemetry_ack", "n": 1})
            link.send_nowait({"type": "telemetry_ack", "n": 2})
            link.send_nowait({"type": "emergency_stop", "n": 3}, urgent=True)
    assert [(at, frame["type"]) for at, frame in peer.received] == [
        (1.0, "emergency_stop"),
        (1.0, "telemetry_ack"),
        (1.0, "telemetry_ack"),
    ]


async def test_a_heartbeat_timeout_is_reported_even_while_a_write_is_stuck(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer stopped reading: the write started at 25 s never finishes. The heartbeat
    # still ends the socket at 40 s, and the caller learns it was 4008.
    with trio.fail_after(GUARD):
        link = OutboundLink()
        peer = ScriptedPeer([], send_seconds=1000)
        outcome: list[tuple[tuple[int, str], float]] = []

        async def serve() -> None:
            result, ended_at, _ = await _serve(peer, link)
            outcome.append((result, ended_at))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await trio.sleep(25)
            link.send_nowait({"type": "telemetry_ack"})
    assert outcome == [((4008, "heartbeat_timeout"), 40.0)]


def test_decode_json_refuses_what_is_not_json() -> None:
    assert decode_json('{"type": "pong"}') == {"type": "pong"}
    assert decode_json(b'{"a": 1}') == {"a": 1}
    for raw in (NOT_JSON, b"\xff\xfe"):
        with pytest.raises(ContractError) as raised:
            decode_json(raw)
        assert raised.value.error == "invalid_json"
