"""The life of one WebSocket, whoever is on the other end (CONTRACT §6.1 heartbeat and limits).

Three tasks in one nursery, in the style of trio-websocket's heartbeat: a reader that hands
frames to the owner and enforces the invalid-message and flood limits, a writer that drains
the :class:`OutboundLink` (every frame ready at once goes out in one write, see
:data:`WRITE_BATCH_FRAMES`), and a heartbeat that pings every 30 s and closes 4008 when nothing
arrives within 10 s of a ping (or for 60 s at all). Whatever ends first ends the socket;
:func:`run_socket` returns the close code and reason to send. No Quart here: the API layer
passes in ``receive``/``send`` callables, and tests pass fakes on trio's MockClock.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.sockets.encoded import EncodedEvent, Frame, frame_text
from actors.sockets.outbound import LinkClosedError, OutboundLink
from hub.clock import now_timestamp
from hub.contract import ws_events
from hub.errors import ContractError
from hub.identity_cache import IdentityCache

NORMAL = 1000
INVALID_MESSAGE = 4002
FLOODING = 4003
HEARTBEAT_TIMEOUT = 4008
FINAL_ERROR_WAIT = 5.0  # how long a 4002 close waits for the last error frame to go out
WRITE_BATCH_FRAMES = 64
"""At most this many frames go out in one write. Writing each frame on its own cost 75–110 µs
of CPU a frame here, ten frames in one write about 12 µs each (docs/performance.md)."""
WRITE_BATCH_CHARS = 256 * 1024
"""A write stops taking more frames once it holds this much text (a big snapshot goes alone)."""

SendTexts = Callable[[Sequence[str]], Awaitable[None]]
"""Writes text messages to the peer, in order, each its own WebSocket message."""


@dataclass(frozen=True, slots=True)
class SocketPolicy:
    """Timers and limits of one socket, in seconds and messages."""

    ping_interval: float = 30.0
    pong_timeout: float = 10.0
    silence_limit: float = 60.0
    max_consecutive_invalid: int = 3
    flood_messages_per_second: int = 50
    flood_seconds: int = 5


class PeerGoneError(Exception):
    """The peer closed the socket or the connection broke."""


@dataclass(slots=True)
class _FloodMeter:
    """Counts messages per whole second of trio time; reports a flood sustained long enough."""

    limit: int
    seconds_allowed: int
    second: int = -1
    count: int = 0
    busy_seconds: int = 0

    def arrived(self, now: float) -> bool:
        second = math.floor(now)
        if second != self.second:
            was_busy = self.count > self.limit
            contiguous = second == self.second + 1
            self.busy_seconds = self.busy_seconds if (was_busy and contiguous) else 0
            self.second, self.count = second, 0
        self.count += 1
        if self.count == self.limit + 1:
            self.busy_seconds += 1
        return self.busy_seconds >= self.seconds_allowed


@dataclass(slots=True)
class _WriterProgress:
    """Whether the writer is in the middle of a write; ``progress`` is set after each one."""

    busy: bool = False
    progress: trio.Event = field(default_factory=trio.Event)

    def wrote(self) -> None:
        self.busy = False
        self.progress.set()
        self.progress = trio.Event()


FrameHandler = Callable[[str | bytes], Awaitable[None]]


async def run_socket(
    link: OutboundLink,
    *,
    receive: Callable[[], Awaitable[str | bytes]],
    send: SendTexts,
    on_frame: FrameHandler,
    policy: SocketPolicy = SocketPolicy(),
) -> tuple[int, str]:
    """Serve the socket until one side ends it; return the ``(code, reason)`` to close with.

    ``on_frame`` handles one inbound frame; raising :class:`ContractError` marks the frame
    invalid (an ``error`` frame is sent; three in a row close 4002 once the third error is
    written). Returns ``(1000, "peer closed")``, with nothing more to send, when the peer went
    away (``receive`` raised PeerGoneError). ``send`` gets every frame that is ready when
    the writer gets its turn (up to :data:`WRITE_BATCH_FRAMES`), urgent ones first.
    """
    outcome: list[tuple[int, str]] = []
    flood = _FloodMeter(policy.flood_messages_per_second, policy.flood_seconds)
    writer = _WriterProgress()

    async def flushed() -> None:
        """Wait until every frame queued so far is written (or the link is closed)."""
        while (link.depth() or writer.busy) and not link.closed:
            await writer.progress.wait()

    async def read() -> None:
        invalid = 0
        while True:
            try:
                raw = await receive()
            except PeerGoneError:
                outcome.append((NORMAL, "peer closed"))
                link.close(NORMAL, "peer closed")
                return
            now = trio.current_time()
            link.last_received = now
            if flood.arrived(now):
                link.close(FLOODING, "rate_limit")
                return
            try:
                await on_frame(raw)
                invalid = 0
            except ContractError as error:
                invalid += 1
                link.send_nowait(ws_events.contract_error_frame(error))
                if invalid >= policy.max_consecutive_invalid:
                    with trio.move_on_after(FINAL_ERROR_WAIT):
                        await flushed()  # the peer gets the error of the last one too
                    link.close(INVALID_MESSAGE, "invalid_message")
                    return

    async def write() -> None:
        while True:
            try:
                frame = await link.next_frame()
            except LinkClosedError as closed:
                outcome.append((closed.code, closed.reason))
                return
            writer.busy = True
            await send(ready_texts(link, first=frame))
            writer.wrote()

    async def heartbeat() -> None:
        # Pings keep a fixed rhythm (30 s, 60 s, …) however long the pong wait took.
        next_ping = trio.current_time() + policy.ping_interval
        while not link.closed:
            await trio.sleep_until(next_ping)
            pinged_at = trio.current_time()
            next_ping += policy.ping_interval
            link.send_nowait(ws_events.ping(now_timestamp()))
            await trio.sleep(policy.pong_timeout)
            quiet_since = trio.current_time() - link.last_received
            if link.last_received < pinged_at or quiet_since >= policy.silence_limit:
                link.close(HEARTBEAT_TIMEOUT, "heartbeat_timeout")
                return

    async with trio.open_nursery() as socket_nursery:

        async def until_done(task: Callable[[], Awaitable[None]]) -> None:
            await task()
            if outcome or link.closed:
                socket_nursery.cancel_scope.cancel()

        socket_nursery.start_soon(until_done, write)
        socket_nursery.start_soon(until_done, read)
        socket_nursery.start_soon(until_done, heartbeat)
    if outcome:
        return outcome[0]
    if link.closed:
        # The writer was cancelled in the middle of a write; the link still knows why.
        try:
            await link.next_frame()
        except LinkClosedError as closed:
            return (closed.code, closed.reason)
    return (NORMAL, "")


def ready_texts(link: OutboundLink, *, first: Frame) -> list[str]:
    """``first`` and the frames ready behind it, encoded, within one write's limits."""
    texts = [encode_frame(first)]
    chars = len(texts[0])
    while len(texts) < WRITE_BATCH_FRAMES and chars < WRITE_BATCH_CHARS:
        frame = link.next_frame_nowait()
        if frame is None:
            break
        text = encode_frame(frame)
        texts.append(text)
        chars += len(text)
    return texts


_encoded: IdentityCache[dict[str, Any], str] = IdentityCache(4096)


def encode_frame(frame: Frame) -> str:
    """The JSON text of a frame, encoded once however many sessions it goes to.

    Numbered vehicle events come encoded already (:class:`EncodedEvent`). Other frames the
    Router hands to several sessions (command statuses, alerts) are dicts: their text is
    cached by the dict's identity (the cache holds the dict, so the identity cannot be
    reused meanwhile). Frames are never changed after they are queued.
    """
    if isinstance(frame, EncodedEvent):
        return frame.text
    return _encoded.get(frame, frame_text)
