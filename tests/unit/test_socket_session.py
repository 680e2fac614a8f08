"""run_socket: heartbeat, invalid-message and flood limits, and who ends the socket (§6.1).

The peer is a script of inbound frames at virtual times; everything the hub writes is
recorded with the virtual time it went out. Times are relative to the start of each test.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from actors.sockets.connection import (
    FLOODING,
    HEARTBEAT_TIMEOUT,
    INVALID_MESSAGE,
    NORMAL,
    WRITE_BATCH_CHARS,
    WRITE_BATCH_FRAMES,
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
        self.writes: list[int] = []  # how many frames each write carried

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

    async def send(self, texts: Sequence[str]) -> None:
        if self._send_seconds:
            await trio.sleep(self._send_seconds)
        self.writes.append(len(texts))
        self.received.extend((self.now(), json.loads(text)) for text in texts)

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


@dataclass
class Socket:
    """A socket run against a :class:`ScriptedPeer`, and how it ended once it has.

    ``result`` is what ``run_socket`` returned, ``(code, reason)``; ``ended_at`` the virtual
    time it returned at.
    """

    peer: ScriptedPeer
    link: OutboundLink
    handler: Handler
    result: tuple[int, str] | None = None
    ended_at: float | None = None


def _socket(script: Iterable[tuple[float, str | None]], send_seconds: float) -> Socket:
    """A fresh link and handler for a peer that starts its script now."""
    peer = ScriptedPeer(script, send_seconds)
    return Socket(peer, OutboundLink(), Handler(peer))


async def _run(socket: Socket, policy: SocketPolicy | None = None) -> None:
    """Run ``socket`` to its end and record how it ended."""
    socket.result = await run_socket(
        socket.link,
        receive=socket.peer.receive,
        send=socket.peer.send,
        on_frame=socket.handler,
        policy=policy or SocketPolicy(),
    )
    socket.ended_at = socket.peer.now()


async def serve(
    script: Iterable[tuple[float, str | None]],
    *,
    send_seconds: float = 0.0,
    policy: SocketPolicy | None = None,
) -> Socket:
    """Run a socket against a peer playing ``script`` until it ends, under the GUARD deadline."""
    with trio.fail_after(GUARD):
        socket = _socket(script, send_seconds)
        await _run(socket, policy)
    return socket


@asynccontextmanager
async def serving(
    script: Iterable[tuple[float, str | None]], *, send_seconds: float = 0.0
) -> AsyncIterator[Socket]:
    """Run the socket in the background while the body acts; leave once the socket ended.

    The body and the wait for the end run under the GUARD deadline.
    """
    with trio.fail_after(GUARD):
        socket = _socket(script, send_seconds)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_run, socket)
            yield socket


HEARTBEAT_TIMEOUT_END = (HEARTBEAT_TIMEOUT, "heartbeat_timeout")
PEER_CLOSED = (NORMAL, "peer closed")


# --- heartbeat ----------------------------------------------------------------------------


async def test_a_silent_peer_is_pinged_at_30_s_and_closed_4008_at_40_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([])
    assert socket.result == HEARTBEAT_TIMEOUT_END == (4008, "heartbeat_timeout")
    assert socket.ended_at == 40.0
    assert [frame["type"] for _, frame in socket.peer.received] == ["ping"]
    assert socket.peer.times("ping") == [30.0]
    assert set(socket.peer.frames("ping")[0][1]) == {"type", "timestamp"}


@pytest.mark.parametrize(
    ("script", "policy", "pings", "result", "ended_at"),
    [
        pytest.param(
            [(35, PONG)],
            None,
            [30.0, 60.0],
            (4008, "heartbeat_timeout"),
            70.0,
            id="a_pong_keeps_the_socket_open_and_pings_keep_their_30_s_rhythm",
        ),
        pytest.param(
            [(31, PONG), (61, PONG), (91, PONG), (100, GONE)],
            None,
            [30.0, 60.0, 90.0],
            PEER_CLOSED,
            100.0,
            id="a_peer_answering_every_ping_stays_connected",
        ),
        pytest.param(
            [(29, LOCATION)],
            None,
            [30.0],
            (4008, "heartbeat_timeout"),
            40.0,
            id="a_message_before_the_ping_does_not_answer_it",
        ),
        pytest.param(
            [(6, PONG)],
            SocketPolicy(ping_interval=5, pong_timeout=2),
            [5.0, 10.0],
            (4008, "heartbeat_timeout"),
            12.0,
            id="the_heartbeat_timers_come_from_the_policy",
        ),
    ],
)
async def test_pings_and_the_end_of_the_socket_follow_the_heartbeat(
    autojump_clock: trio.testing.MockClock,
    script: list[tuple[float, str | None]],
    policy: SocketPolicy | None,
    pings: list[float],
    result: tuple[int, str],
    ended_at: float,
) -> None:
    socket = await serve(script, policy=policy)
    assert socket.peer.times("ping") == pings
    assert socket.result == result
    assert socket.ended_at == ended_at


async def test_any_inbound_message_after_the_ping_counts_as_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([(39, LOCATION), (50, GONE)])
    assert socket.handler.handled == [(39.0, "location")]
    assert socket.peer.times("ping") == [30.0]
    assert (socket.result, socket.ended_at) == ((1000, "peer closed"), 50.0)


async def test_an_invalid_message_also_counts_as_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([(35, NOT_JSON), (50, GONE)])
    assert (socket.result, socket.ended_at) == ((1000, "peer closed"), 50.0)


# --- invalid messages ---------------------------------------------------------------------

THREE_QUICK_INVALID = [(0, NOT_JSON), (0.25, NOT_JSON), (0.5, NOT_JSON)]


async def test_three_invalid_messages_in_a_row_get_three_errors_then_close_4002(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([(1, NOT_JSON), (2, '{"type": "teleport"}'), (3, "[]")])
    assert socket.result == (INVALID_MESSAGE, "invalid_message") == (4002, "invalid_message")
    assert socket.ended_at == 3.0
    errors = socket.peer.frames("error")
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
    socket = await serve([(1, NOT_JSON), (2, LOCATION), (3, NOT_JSON), (4, NOT_JSON), (10, GONE)])
    assert socket.peer.times("error") == [1.0, 3.0, 4.0]
    assert socket.handler.handled == [(2.0, "location")]
    assert (socket.result, socket.ended_at) == ((1000, "peer closed"), 10.0)


async def test_the_third_error_goes_out_before_4002_even_when_the_peer_reads_slowly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each write takes 1 s: when the third invalid frame arrives at 0.5 s, the first error is
    # still being written. The socket must neither cut that write short nor lose the code.
    # The second and third errors wait together, so they go out in one write.
    socket = await serve(THREE_QUICK_INVALID, send_seconds=1)
    assert socket.peer.times("error") == [1.0, 2.0, 2.0]
    assert socket.peer.writes == [1, 2]
    assert (socket.result, socket.ended_at) == ((4002, "invalid_message"), 2.0)


async def test_a_peer_that_stopped_reading_is_closed_4002_without_its_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first error's write never finishes: the close waits 5 s for it, no longer.
    socket = await serve(THREE_QUICK_INVALID, send_seconds=1000)
    assert (socket.result, socket.ended_at) == ((4002, "invalid_message"), 5.5)
    assert socket.peer.received == []


# --- flood --------------------------------------------------------------------------------


def _burst(second: int, count: int) -> list[tuple[float, str | None]]:
    # count messages spread over one second (1/64 s apart: exact in binary floating point)
    return [(second + index / 64, PONG) for index in range(count)]


def _bursts(seconds: Iterable[int], count: int) -> list[tuple[float, str | None]]:
    """A burst of ``count`` messages in each of ``seconds``."""
    return [item for second in seconds for item in _burst(second, count)]


async def test_51_messages_a_second_for_5_seconds_closes_4003(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve(_bursts(range(6), 51))
    assert socket.result == (FLOODING, "rate_limit") == (4003, "rate_limit")
    assert socket.ended_at == 4 + 50 / 64  # the 51st message of the 5th busy second
    assert len(socket.handler.handled) == 5 * 51 - 1  # the message that tipped it is not handled


async def test_one_busy_second_then_quiet_stays_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([*_burst(0, 51), (10, GONE)])
    assert (socket.result, socket.ended_at) == ((1000, "peer closed"), 10.0)
    assert len(socket.handler.handled) == 51


async def test_exactly_50_messages_a_second_is_allowed_indefinitely(
    autojump_clock: trio.testing.MockClock,
) -> None:
    socket = await serve([*_bursts(range(8), 50), (9, GONE)])
    assert socket.result == (1000, "peer closed")
    assert len(socket.handler.handled) == 8 * 50


async def test_busy_seconds_must_be_consecutive(autojump_clock: trio.testing.MockClock) -> None:
    busy = [0, 1, 2, 3, 5, 6, 7, 8]  # second 4 is quiet: two runs of 4 busy seconds
    socket = await serve([*_bursts(busy, 60), (9.5, GONE)])
    assert (socket.result, socket.ended_at) == ((1000, "peer closed"), 9.5)


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
    socket = await serve([(3, LOCATION), (7, GONE)])
    assert socket.result == PEER_CLOSED == (1000, "peer closed")
    assert socket.ended_at == 7.0
    assert socket.handler.handled == [(3.0, "location")]
    assert socket.link.closed
    assert not socket.link.send_nowait({"type": "telemetry_ack"})


async def test_a_hub_side_close_ends_the_socket_with_its_code(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving([]) as socket:
        await trio.sleep(12)
        socket.link.close(4009, "replaced")
    assert (socket.result, socket.ended_at) == ((4009, "replaced"), 12.0)


async def test_frames_queued_on_the_link_are_written_to_the_peer_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving([(5, GONE)]) as socket:
        await trio.sleep(1)
        socket.link.send_nowait({"type": "telemetry_ack", "n": 1})
        socket.link.send_nowait({"type": "telemetry_ack", "n": 2})
        socket.link.send_nowait({"type": "emergency_stop", "n": 3}, urgent=True)
    assert [(at, frame["type"]) for at, frame in socket.peer.received] == [
        (1.0, "emergency_stop"),
        (1.0, "telemetry_ack"),
        (1.0, "telemetry_ack"),
    ]


async def test_frames_waiting_together_go_out_in_few_writes_urgent_first_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 150 events and then a stop, queued while the writer waits for its turn: three writes
    # (64 + 64 + 23 frames) instead of 151, the stop first, the events in their order.
    async with serving([(5, GONE)]) as socket:
        await trio.sleep(1)
        for n in range(150):
            socket.link.send_nowait({"type": "location_update", "n": n})
        socket.link.send_nowait({"type": "emergency_stop"}, urgent=True)
    assert socket.peer.writes == [WRITE_BATCH_FRAMES, WRITE_BATCH_FRAMES, 23]
    kinds = [frame["type"] for _, frame in socket.peer.received]
    assert kinds == ["emergency_stop"] + ["location_update"] * 150
    numbers = [frame["n"] for _, frame in socket.peer.received[1:]]
    assert numbers == list(range(150))


async def test_a_write_takes_no_more_frames_once_it_holds_enough_text(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Three frames of 60 % of a write's text each: the first write stops after the second.
    padding = "x" * (WRITE_BATCH_CHARS * 6 // 10)
    async with serving([(5, GONE)]) as socket:
        await trio.sleep(1)
        for n in range(3):
            socket.link.send_nowait({"type": "subscribed", "n": n, "padding": padding})
    assert socket.peer.writes == [2, 1]
    assert [frame["n"] for _, frame in socket.peer.received] == [0, 1, 2]


async def test_a_frame_queued_during_a_write_goes_out_in_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Writes take 1 s. The first frame goes alone; the two queued meanwhile go together.
    async with serving([(10, GONE)], send_seconds=1) as socket:
        await trio.sleep(1)
        socket.link.send_nowait({"type": "telemetry_ack", "n": 1})
        await trio.sleep(0.5)
        socket.link.send_nowait({"type": "telemetry_ack", "n": 2})
        socket.link.send_nowait({"type": "telemetry_ack", "n": 3})
    assert socket.peer.writes == [1, 2]
    assert [(at, frame["n"]) for at, frame in socket.peer.received] == [
        (2.0, 1),
        (3.0, 2),
        (3.0, 3),
    ]


async def test_a_heartbeat_timeout_is_reported_even_while_a_write_is_stuck(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer stopped reading: the write started at 25 s never finishes. The heartbeat
    # still ends the socket at 40 s, and the caller learns it was 4008.
    async with serving([], send_seconds=1000) as socket:
        await trio.sleep(25)
        socket.link.send_nowait({"type": "telemetry_ack"})
    assert (socket.result, socket.ended_at) == ((4008, "heartbeat_timeout"), 40.0)


def test_decode_json_refuses_what_is_not_json() -> None:
    assert decode_json('{"type": "pong"}') == {"type": "pong"}
    assert decode_json(b'{"a": 1}') == {"a": 1}
    for raw in (NOT_JSON, b"\xff\xfe"):
        with pytest.raises(ContractError) as raised:
            decode_json(raw)
        assert raised.value.error == "invalid_json"
