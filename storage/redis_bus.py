"""The bus several hubs share: vehicle events, command statuses, alerts, presence and calls
between hubs, over Redis pub/sub (coredis, native on trio).

Every hub publishes what it accepts on one channel, ``tvm:bus``, and relays every message on
it — its own included — to its sessions, so each hub sees the whole fleet in one order.
(``tvm`` is the namespace, ``TVM_REDIS_NAMESPACE``: the hubs of one fleet share it, another
fleet on the same Redis takes another; pub/sub channels ignore the database number.)

- **Events** get their per-vehicle ``seq`` from Redis as they are published: one Lua script
  takes the vehicle's counter (``tvm:seq:<vehicle>``), raises it to at least the publisher's
  floor (the last ``seq`` it saw) and publishes the event with its number, in one step, so
  numbers are strictly increasing fleet-wide and reach every hub in order. A counter Redis has
  lost starts again from the wall clock in µs, above anything numbered before.
- **Presence**: the hub holding a vehicle's socket owns ``tvm:presence:<vehicle>`` (its hub id
  and link id, with a TTL it renews); a claim is announced on the bus, so a hub holding an
  older socket of that vehicle closes it.
- **Calls**: a hub asks another (the owner of a vehicle's socket) to run a command for it on
  the owner's channel ``tvm:hub:<id>``; the answer comes back on the asker's.

Publishing never blocks the publisher: messages wait in a bounded outbox and one task sends
them, many per script call. While Redis is away :attr:`RedisBus.up` is false, publishing
answers False (the caller then delivers on its own hub), a batch that failed runs each
message's fallback, and the bus reconnects by itself every second.

Standalone Redis (or a primary with replicas), not Redis Cluster: the script touches keys
of many vehicles at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

import coredis
import trio

from storage.redis_channels import describe_error

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "tvm"  # the first part of every key and channel name
OUTBOX_CAPACITY = 20_000
BATCH_LIMIT = 500  # messages per script call
RECONNECT_DELAY = 1.0
COMMAND_TIMEOUT = 2.0  # seconds a Redis command may take before the bus counts Redis as away
CALL_TIMEOUT = 3.0

Fallback = Callable[[], None]

_PUBLISH_BATCH = """
local channel = ARGV[1]
local published = 0
for i = 2, #ARGV, 6 do
  local op, key, n1, n2, s1, s2 = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  if op == 'E' then
    local current = tonumber(redis.call('GET', key) or n1)
    local floor = tonumber(n2)
    if current < floor then current = floor end
    local seq = string.format('%d', current + 1)
    redis.call('SET', key, seq)
    redis.call('PUBLISH', channel, s1 .. seq .. s2 .. seq .. '}')
  elseif op == 'P' then
    redis.call('PUBLISH', key, s1)
  elseif op == 'C' then
    redis.call('SET', key, s1, 'PX', n1)
    redis.call('PUBLISH', channel, s2)
  elseif op == 'R' then
    if redis.call('GET', key) == s1 then redis.call('DEL', key) end
  elseif op == 'X' then
    if redis.call('GET', key) == s1 then redis.call('PEXPIRE', key, n1) end
  elseif op == 'F' then
    local current = redis.call('GET', key)
    if (not current) or tonumber(current) < tonumber(n2) then redis.call('SET', key, n2) end
  end
  published = published + 1
end
return published
"""


class BusListener(Protocol):
    """What a hub does with the bus's messages. The ``on_`` methods must not block (they run
    on the bus's receiving task); :meth:`handle_call` may await."""

    def on_event(self, vehicle_id: str, seq: int, type: str, text: str, *, alert: bool) -> None:
        """A numbered vehicle event (or an alert naming a vehicle) from any hub."""

    def on_status(self, vehicle_id: str, sender_session: str | None, text: str) -> None:
        """A command status from any hub, for its sender session and the vehicle's watchers."""

    def on_alert(self, text: str) -> None:
        """An alert naming no vehicle, from any hub."""

    def on_claim(self, vehicle_id: str, hub_id: str, link_id: str) -> None:
        """Some hub now holds this vehicle's socket."""

    def on_bus_state(self, up: bool) -> None:
        """The bus was (re)connected, or lost."""

    async def handle_call(self, name: str, body: str) -> str:
        """Answer another hub's call; raising answers it with the error's text."""
        ...


class BusCallError(Exception):
    """A call to another hub failed there (its text) or got no answer in time."""


@dataclass(frozen=True, slots=True)
class _Outgoing:
    op: str
    key: str
    n1: str
    n2: str
    s1: str
    s2: str
    fallback: Fallback | None = None

    def arguments(self) -> tuple[str, ...]:
        return (self.op, self.key, self.n1, self.n2, self.s1, self.s2)


def _cancellation_of(exc: BaseException) -> BaseException:
    """What to re-raise when cancelled: the cancellation alone. (coredis' clean-up on
    cancellation can add a ``ClosedResourceError`` beside it, which would otherwise read as
    a crash of the bus at every shutdown.)"""
    if isinstance(exc, BaseExceptionGroup):
        cancelled = exc.subgroup(trio.Cancelled)
        if cancelled is not None:
            return cancelled
    return exc


def new_hub_id() -> str:
    """A name for this hub process, unique across restarts: host, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _now_micros() -> str:
    return str(time.time_ns() // 1000)


class RedisBus:
    """One hub's end of the bus (see the module docstring); :meth:`run` keeps it connected."""

    def __init__(
        self,
        url: str,
        *,
        hub_id: str,
        presence_ttl: float,
        namespace: str = DEFAULT_NAMESPACE,
        command_timeout: float = COMMAND_TIMEOUT,
        reconnect_delay: float = RECONNECT_DELAY,
    ) -> None:
        self.url = url
        self.hub_id = hub_id
        self._channel = f"{namespace}:bus"
        self._seq_prefix = f"{namespace}:seq:"
        self._presence_prefix = f"{namespace}:presence:"
        self._hub_prefix = f"{namespace}:hub:"
        self.up = False
        self.last_error: str | None = None
        self.published = 0
        self.received = 0
        self.fallbacks = 0
        self._presence_ttl_ms = str(max(1000, int(presence_ttl * 1000)))
        self._renew_every = max(0.5, presence_ttl / 3)
        self._command_timeout = command_timeout
        self._reconnect_delay = reconnect_delay
        self._outbox: deque[_Outgoing] = deque()
        self._wake = trio.Event()
        self._claims: dict[str, str] = {}  # vehicle id → link id, sockets held by this hub
        self._client: coredis.Redis[str] | None = None
        self._calls: dict[str, trio.MemorySendChannel[tuple[bool, str]]] = {}
        self._own_channel = self._hub_prefix + hub_id
        self._connected = trio.Event()

    # --- publishing (never blocks) ----------------------------------------------------------

    def publish_event(
        self,
        vehicle_id: str,
        type: str,
        text_before_seq: str,
        *,
        floor: int,
        alert: bool = False,
        fallback: Fallback | None = None,
    ) -> bool:
        """Number and publish an event whose JSON text, up to its ``seq`` value, is
        ``text_before_seq`` (the bus adds the number and the closing brace). False when the
        bus is away or its outbox is full: the caller delivers it itself."""
        kind = "A" if alert else "E"
        return self._queue(
            _Outgoing(
                "E",
                self._seq_prefix + vehicle_id,
                _now_micros(),
                str(floor),
                f"{kind}|{vehicle_id}|",
                f"|{type}|{text_before_seq}",
                fallback,
            )
        )

    def publish_status(
        self, vehicle_id: str, sender_session: str | None, text: str, fallback: Fallback | None
    ) -> bool:
        """Publish a command status (no ``seq``); False when the caller must deliver it."""
        notice = f"S|{vehicle_id}|{sender_session or ''}|{text}"
        return self._queue(_Outgoing("P", self._channel, "0", "0", notice, "", fallback))

    def publish_alert(self, text: str, fallback: Fallback | None) -> bool:
        """Publish an alert naming no vehicle; False when the caller must deliver it."""
        return self._queue(_Outgoing("P", self._channel, "0", "0", f"L|{text}", "", fallback))

    def raise_floors(self, floors: Mapping[str, int]) -> None:
        """Lift the shared counters to at least these ``seq`` values (numbers this hub gave
        while the bus was away), so no hub numbers an event below what sessions have seen."""
        for vehicle_id, seq in floors.items():
            self._queue(_Outgoing("F", self._seq_prefix + vehicle_id, "0", str(seq), "", ""))

    def claim(self, vehicle_id: str, link_id: str) -> None:
        """This hub now holds the vehicle's socket ``link_id``: own its presence, tell others."""
        self._claims[vehicle_id] = link_id
        value = f"{self.hub_id}|{link_id}"
        self._queue(
            _Outgoing(
                "C",
                self._presence_prefix + vehicle_id,
                self._presence_ttl_ms,
                "0",
                value,
                f"C|{vehicle_id}|{value}",
            )
        )

    def release(self, vehicle_id: str, link_id: str) -> None:
        """The socket ``link_id`` closed: give up the presence if it is still ours."""
        if self._claims.get(vehicle_id) == link_id:
            del self._claims[vehicle_id]
        value = f"{self.hub_id}|{link_id}"
        self._queue(_Outgoing("R", self._presence_prefix + vehicle_id, "0", "0", value, ""))

    def _queue(self, message: _Outgoing) -> bool:
        if not self.up or len(self._outbox) >= OUTBOX_CAPACITY:
            return False
        self._outbox.append(message)
        self._wake.set()
        return True

    # --- asking (bounded waits) -------------------------------------------------------------

    def holds(self, vehicle_id: str) -> bool:
        """Whether this hub holds the vehicle's socket (no round trip)."""
        return vehicle_id in self._claims

    async def owners(
        self, vehicle_ids: Collection[str], *, within: float | None = None
    ) -> dict[str, str] | None:
        """The hub holding each connected vehicle's socket (absent: not connected anywhere);
        None when Redis cannot say. Blocks for one round trip, at most ``within`` seconds
        (default: the command timeout)."""
        client = self._client
        if client is None or not self.up:
            return None
        if not vehicle_ids:
            return {}
        ordered = list(vehicle_ids)
        try:
            with trio.fail_after(self._command_timeout if within is None else within):
                values = await client.mget([self._presence_prefix + v for v in ordered])
        except Exception as exc:  # Redis away: the caller uses what its own hub knows
            self.last_error = describe_error(exc)
            return None
        return {
            vehicle_id: value.split("|", 1)[0]
            for vehicle_id, value in zip(ordered, values, strict=True)
            if value
        }

    async def call(
        self, hub_id: str, name: str, body: str, *, answer_within: float = CALL_TIMEOUT
    ) -> str:
        """Ask hub ``hub_id`` to run ``name`` with ``body`` and return its answer.

        Raises :class:`BusCallError` if that hub answers with an error, no answer comes within
        ``answer_within`` seconds (it may be gone; the call may still have run there), or the bus is
        away. Cancellation abandons the wait (the other hub may still run the call).
        """
        call_id = secrets.token_hex(8)
        send, receive = trio.open_memory_channel[tuple[bool, str]](1)
        self._calls[call_id] = send
        try:
            message = f"Q|{self.hub_id}|{call_id}|{name}|{body}"
            if not self._queue(_Outgoing("P", self._hub_prefix + hub_id, "0", "0", message, "")):
                raise BusCallError("the bus is away")
            with trio.move_on_after(answer_within):
                ok, answer = await receive.receive()
                if not ok:
                    raise BusCallError(answer)
                return answer
            raise BusCallError(f"hub {hub_id} did not answer within {answer_within:g} s")
        finally:
            del self._calls[call_id]

    async def until_up(self) -> None:
        """Block until the bus is connected (callers bound the wait)."""
        await self._connected.wait()

    # --- running ----------------------------------------------------------------------------

    async def run(
        self,
        listener: BusListener,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Stay connected until cancelled: subscribe, send the outbox, renew presence, relay
        every message to ``listener``. Reconnects every second while Redis is away; reports
        each change through ``listener.on_bus_state``. Returns only by cancellation."""
        task_status.started()
        while True:
            try:
                await self._connected_session(listener)
            except BaseException as exc:
                if trio.current_effective_deadline() == -math.inf:  # we are being cancelled
                    self.up = False
                    raise _cancellation_of(exc) from None
                if not isinstance(exc, Exception):
                    raise
                self._went_away(listener, exc)
            await trio.sleep(self._reconnect_delay)

    async def _connected_session(self, listener: BusListener) -> None:
        client: coredis.Redis[str] = coredis.Redis.from_url(
            self.url,
            decode_responses=True,
            connect_timeout=self._command_timeout,
            stream_timeout=self._command_timeout,
        )
        async with client:
            script = client.register_script(_PUBLISH_BATCH)
            async with client.pubsub(
                channels=[self._channel, self._own_channel],
                retry_policy=None,
                ignore_subscribe_messages=True,
                max_idle_seconds=2,
            ) as subscription:
                with trio.fail_after(self._command_timeout):
                    await client.ping()
                self._client = client
                self.up = True
                self.last_error = None
                self._connected.set()
                logger.info("bus connected (%s) as hub %s", self.url, self.hub_id)
                listener.on_bus_state(True)
                if self._claims:  # presence taken while away, or before a Redis restart
                    for vehicle_id, link_id in list(self._claims.items()):
                        self.claim(vehicle_id, link_id)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._send_outbox, script)
                    nursery.start_soon(self._renew_presence)
                    async for message in subscription:
                        if message["type"] == "message":
                            self._received(str(message["data"]), listener, nursery)
                raise ConnectionError("the subscription ended")

    def _went_away(self, listener: BusListener, exc: BaseException) -> None:
        was_up = self.up
        self.up = False
        if self._connected.is_set():
            self._connected = trio.Event()
        self._client = None
        self.last_error = describe_error(exc)
        for pending in self._calls.values():
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                pending.send_nowait((False, "the bus was lost"))  # answered already: fine
        self._fail_outbox()
        if was_up:
            logger.warning("bus lost: %s; delivering on this hub only", self.last_error)
            listener.on_bus_state(False)

    def _fail_outbox(self, batch: Collection[_Outgoing] = ()) -> None:
        for message in (*batch, *self._outbox):
            if message.fallback is not None:
                self.fallbacks += 1
                message.fallback()
        self._outbox.clear()

    async def _send_outbox(self, script: coredis.commands.Script[str]) -> None:
        outbox = self._outbox
        while True:
            if not outbox:
                self._wake = trio.Event()
                await self._wake.wait()
            batch = [outbox.popleft() for _ in range(min(BATCH_LIMIT, len(outbox)))]
            arguments: list[str] = [self._channel]
            for message in batch:
                arguments.extend(message.arguments())
            try:
                with trio.fail_after(self._command_timeout):
                    await script(keys=[], args=arguments)
            except BaseException:
                self._fail_outbox(batch)
                raise
            self.published += len(batch)

    async def _renew_presence(self) -> None:
        while True:
            await trio.sleep(self._renew_every)
            for vehicle_id, link_id in list(self._claims.items()):
                self._queue(
                    _Outgoing(
                        "X",
                        self._presence_prefix + vehicle_id,
                        self._presence_ttl_ms,
                        "0",
                        f"{self.hub_id}|{link_id}",
                        "",
                    )
                )

    def _received(self, data: str, listener: BusListener, nursery: trio.Nursery) -> None:
        self.received += 1
        kind = data[:1]
        try:
            if kind in ("E", "A"):
                _, vehicle_id, seq, type, text = data.split("|", 4)
                listener.on_event(vehicle_id, int(seq), type, text, alert=kind == "A")
            elif kind == "S":
                _, vehicle_id, sender, text = data.split("|", 3)
                listener.on_status(vehicle_id, sender or None, text)
            elif kind == "L":
                listener.on_alert(data[2:])
            elif kind == "C":
                _, vehicle_id, hub_id, link_id = data.split("|", 3)
                if hub_id != self.hub_id and self._claims.get(vehicle_id):
                    del self._claims[vehicle_id]  # the vehicle's presence moved to that hub
                listener.on_claim(vehicle_id, hub_id, link_id)
            elif kind == "Q":
                _, asker, call_id, name, body = data.split("|", 4)
                nursery.start_soon(self._answer, listener, asker, call_id, name, body)
            elif kind == "Y":
                _, call_id, ok, body = data.split("|", 3)
                pending = self._calls.get(call_id)
                if pending is not None:
                    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                        pending.send_nowait((ok == "1", body))  # a second answer: dropped
        except Exception:  # one bad message must not end the relay of the others
            logger.exception("bus message not understood: %.200s", data)

    async def _answer(
        self, listener: BusListener, asker: str, call_id: str, name: str, body: str
    ) -> None:
        try:
            answer, ok = await listener.handle_call(name, body), "1"
        except Exception as exc:
            answer, ok = describe_error(exc), "0"
        message = f"Y|{call_id}|{ok}|{answer}"
        if not self._queue(_Outgoing("P", self._hub_prefix + asker, "0", "0", message, "")):
            logger.warning("answer to hub %s lost: the bus is away", asker)

    def describe(self) -> dict[str, object]:
        """Counts for /debug/actors."""
        return {
            "hub_id": self.hub_id,
            "up": self.up,
            "last_error": self.last_error,
            "published": self.published,
            "received": self.received,
            "fallbacks": self.fallbacks,
            "outbox": len(self._outbox),
            "presence_held": len(self._claims),
        }


__all__ = [
    "DEFAULT_NAMESPACE",
    "BusCallError",
    "BusListener",
    "RedisBus",
    "new_hub_id",
]
