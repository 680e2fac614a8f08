"""One simulated vehicle's I/O: login, telemetry over REST, the vehicle socket, offline spells.

:class:`SimulatedVehicle` runs a :class:`~hub.simulator.vehicle_model.VehicleModel` on trio's
clock (:func:`~hub.simulator.drive.drive`), posts what it emits with httpx, answers commands
on its WebSocket (:mod:`hub.simulator.vehicle_socket`), and now and then drops offline: it
closes its socket, stops posting and keeps its telemetry in a
:class:`~hub.simulator.backlog.Backlog`, which it bulk-uploads when it is back.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from hub.clock import format_timestamp, parse_timestamp
from hub.simulator import command_policy
from hub.simulator.backlog import Backlog
from hub.simulator.drive import drive
from hub.simulator.faults import chance
from hub.simulator.hub_api import HubApi, HubRefusedError, error_code
from hub.simulator.reports import Ack, Emission, Telemetry
from hub.simulator.stats import SimStats
from hub.simulator.tokens import TokenKeeper
from hub.simulator.vehicle_model import VehicleModel
from hub.simulator.vehicle_socket import VehicleSocket

log = logging.getLogger(__name__)

SEND_QUEUE = 500
"""Records waiting for the sender; beyond that they go to the backlog."""
STALE_SECONDS = 240.0
"""A record this old is past the live window (300 s) by the time it is retried: bulk it."""
FINAL_FLUSH_SECONDS = 5.0


class SimulatedVehicle:
    """A vehicle actor; :meth:`run` blocks until :meth:`request_stop` (or the hub refuses it)."""

    def __init__(
        self,
        model: VehicleModel,
        *,
        api: HubApi,
        base_url: str,
        stats: SimStats,
        rng: random.Random,
        offline_rate_per_minute: float = 0.0,
        offline_seconds: tuple[float, float] = (20.0, 90.0),
        tick: float = 1.0,
    ) -> None:
        self.vehicle_id = model.vehicle_id
        self.model = model
        self.backlog = Backlog()
        self.stopped_reason: str | None = None
        self.tokens = TokenKeeper(api, model.vehicle_id, stats)
        self._api = api
        self._stats = stats
        self._rng = rng
        self._offline_rate = offline_rate_per_minute
        self._offline_seconds = offline_seconds
        self._tick = tick
        self._stop = trio.Event()
        self._online = trio.Event()
        self._online.set()
        self._records_in, self._records_out = trio.open_memory_channel[Telemetry](SEND_QUEUE)
        self.socket = VehicleSocket(
            base_url,
            model.vehicle_id,
            token=self.tokens.fresh_token,
            on_command=self._answer_command,
            stats=stats,
            rng=rng,
        )

    @property
    def offline(self) -> bool:
        """True during a simulated loss of connectivity."""
        return self.backlog.offline

    def request_stop(self) -> None:
        """Ask :meth:`run` to close its socket, upload what it holds and return."""
        self._stop.set()

    async def run(self, admin_token: str) -> None:
        """Register, log in, then drive, post and listen until asked to stop.

        A vehicle the hub refuses for good (unknown, disabled, wrong vehicle: HTTP 403/404,
        close codes 4001/4004/4005) stops at once with :attr:`stopped_reason` set.
        """
        try:
            if not await self._unless_stopped(self.tokens.sign_in, admin_token):
                return
            async with trio.open_nursery() as tasks:
                tasks.start_soon(self.tokens.keep_fresh, self._online_wait)
                tasks.start_soon(self.socket.run)
                tasks.start_soon(drive, self.model, self._deliver, self._tick)
                tasks.start_soon(self._post_records)
                if self._offline_rate > 0:
                    tasks.start_soon(self._drop_offline_sometimes)
                await self._stop.wait()
                await self.socket.close()
                tasks.cancel_scope.cancel()
        except* HubRefusedError as group:
            self.stopped_reason = str(group.exceptions[0])
            log.warning("%s stopped: %s", self.vehicle_id, self.stopped_reason)
        await self._final_flush()

    # --- emissions --------------------------------------------------------------------------

    def _deliver(self, emission: Emission) -> None:
        if isinstance(emission, Ack):
            self.socket.queue_ack(emission.frame)
            return
        if emission.kind == "error":
            self._stats.error_reports += 1
        try:
            self._records_in.send_nowait(emission)  # the sender decides: post or backlog
        except trio.WouldBlock:
            self.backlog.add(emission)  # the sender is stuck (429s, slow hub): bulk it later

    def _answer_command(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The socket's command handler: the ack frame; the reports it causes go out too."""
        frame = command_policy.answer_frame(self.model, data)
        for emission in self.model.take_emissions():
            self._deliver(emission)
        return frame

    async def _post_records(self) -> None:
        """Post records one at a time, in order; bulk the backlog when the queue is empty.

        While anything waits in the backlog, new records join it instead of overtaking it.
        """
        async for record in self._records_out:
            if self.offline or len(self.backlog) or self._stale(record):
                self.backlog.add(record)
            else:
                await self._post_or_keep(record)
            if not self.offline and len(self.backlog) and self._queue_empty():
                await self._upload_backlog()

    def _stale(self, record: Telemetry) -> bool:
        age = self.model.stamper.now() - parse_timestamp(record.timestamp)
        return age.total_seconds() > STALE_SECONDS

    def _queue_empty(self) -> bool:
        return self._records_out.statistics().current_buffer_used == 0

    async def _post_or_keep(self, record: Telemetry) -> None:
        posted = False
        try:
            response = await self.tokens.post(self._api.post_telemetry, record)
            posted = True
            status = response.status_code
            if status in (403, 404):
                raise HubRefusedError(f"{record.kind} refused: {error_code(response)}")
            if status == 429 or status >= 500 or error_code(response) == "invalid_timestamp":
                posted = False  # too late or too busy for the live endpoint: bulk it
            elif status != 200:
                self._stats.rejected += 1
                log.warning("%s %s refused: %s", self.vehicle_id, record.kind, response.text)
        except httpx.TransportError:
            self._stats.http_failures += 1
        finally:
            if not posted:
                self.backlog.add(record)  # also when cancelled mid-request: resent by bulk

    async def _upload_backlog(self) -> None:
        """Bulk-upload the backlog, ≤ 1000 messages a request; stop at the first failure."""
        while (batch := self.backlog.next_batch(self.vehicle_id)) is not None:
            try:
                response = await self.tokens.post(self._api.post_bulk, batch)
            except httpx.TransportError:
                self._stats.http_failures += 1
                return
            if response.status_code in (403, 404):
                raise HubRefusedError(f"bulk refused: {error_code(response)}")
            if response.status_code == 429 or response.status_code >= 500:
                return
            if response.status_code != 200:
                self._stats.rejected += 1
                log.warning("%s bulk refused, dropped: %s", self.vehicle_id, response.text)
            self.backlog.confirm(batch)

    async def _final_flush(self) -> None:
        """On the way out: everything still queued goes up in one last bulk (bounded)."""
        while True:
            try:
                self.backlog.add(self._records_out.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        if self.stopped_reason is None and self.tokens.signed_in and len(self.backlog):
            self.backlog.came_online(format_timestamp(self.model.stamper.now()))
            with trio.move_on_after(FINAL_FLUSH_SECONDS):
                await self._upload_backlog()

    # --- offline spells ---------------------------------------------------------------------

    async def _online_wait(self) -> None:
        await self._online.wait()  # the attribute, not a bound method: it is replaced offline

    async def _drop_offline_sometimes(self) -> None:
        while True:
            await trio.sleep(1.0)
            if self._rng.random() < chance(self._offline_rate, 1.0):
                await self.go_offline_for(self._rng.uniform(*self._offline_seconds))

    async def go_offline_for(self, seconds: float) -> None:
        """Lose the link for ``seconds``: no socket, no posts; telemetry piles up locally."""
        self._stats.offline_episodes += 1
        self.backlog.went_offline(format_timestamp(self.model.stamper.now()))
        self._online = trio.Event()
        self.socket.go_offline()
        await trio.sleep(seconds)
        self.backlog.came_online(format_timestamp(self.model.stamper.now()))
        self._online.set()
        self.socket.go_online()

    async def _unless_stopped(self, work: Callable[[str], Awaitable[None]], argument: str) -> bool:
        """``await work(argument)``, given up if a stop is requested; True if it finished."""
        finished = False
        async with trio.open_nursery() as nursery:

            async def give_up_on_stop() -> None:
                await self._stop.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(give_up_on_stop)
            await work(argument)
            finished = True
            nursery.cancel_scope.cancel()
        return finished
