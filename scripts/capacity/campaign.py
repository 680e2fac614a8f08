"""One benchmark run: start the hub, register the vehicles, step every chosen mode, report.

Modes run in a fixed order (rest, ws, fanout, idle, estop, storm) so that ``estop`` can take
its load from the REST capacity just measured. Blocking code; each step is bounded (see
:mod:`.runner`), and the hub, Redis and ceiling processes are stopped in ``finally``.

The hub may be ``--workers N`` processes on one port (probed as one process tree), and
``--hubs N`` such hubs acting as one: on the one database of ``DATABASE_URL`` (required), one
Redis (``REDIS_URL``, else a private redis-server, :mod:`.redis_server`) and one random
``JWT_SECRET`` of the run. Hub 0 starts first (it creates the admin), then the others;
vehicles are registered through hub 0 and reach the other hubs' registries by PostgreSQL
``NOTIFY``, which the run waits :data:`REGISTRY_SPREAD_SECONDS` for.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import partial
from urllib.parse import urlsplit

import trio

from scripts.bench_common import HubHandle, hub_server
from scripts.capacity.ceiling import ceiling_server
from scripts.capacity.options import Options
from scripts.capacity.plan import Credential
from scripts.capacity.plot import PlotUnavailableError, write_plot
from scripts.capacity.procstats import ServerProbe
from scripts.capacity.redis_server import private_redis
from scripts.capacity.registration import admin_token, register_vehicles
from scripts.capacity.report import (
    StepResult,
    bench_line,
    capacities,
    capacity_table,
    mode_table,
    summarize,
)
from scripts.capacity.runner import RunnerSettings, Server, StepRequest, run_step

ESTOP_LOAD_SHARE = 0.8
FD_HEADROOM = 512
REGISTRY_SPREAD_SECONDS = 1.0
"""With several hubs: how long vehicles registered on hub 0 take to reach the others."""
HUBS_NEED_DATABASE = "--hubs N>1 needs DATABASE_URL (one database for all hubs)"


class ServerDiedError(Exception):
    """The server under test exited during the run."""


def estop_load_bound(options: Options) -> int:
    """The most REST vehicles ``estop`` may need (for registering enough up front)."""
    if options.estop_load is not None:
        return options.estop_load
    if options.rest_capacity is not None:
        return max(1, int(options.rest_capacity * ESTOP_LOAD_SHARE))
    if "rest" in options.modes:
        return max(1, int(max(options.steps) * ESTOP_LOAD_SHARE))
    return max(1, int(min(options.steps) * ESTOP_LOAD_SHARE))


def vehicles_needed(options: Options) -> int:
    """How many vehicles the run registers (the largest need of any chosen mode)."""
    needs = [
        estop_load_bound(options) + options.estop_vehicles
        if mode == "estop"
        else max(options.steps_for(mode))
        for mode in options.modes
    ]
    return max(needs)


@contextmanager
def hub_group(
    options: Options, env: Mapping[str, str], say: Callable[[str], None]
) -> Iterator[list[HubHandle]]:
    """``options.hubs`` hubs of ``options.workers`` workers each, sharing one ``JWT_SECRET``
    and (several hubs) one Redis; hub 0 first, each ready before the next starts.

    Blocks while they start (at most a minute each); on exit the hubs are stopped (last
    first), then the private Redis if one was started.
    """
    shared = {**env, "JWT_SECRET": secrets.token_urlsafe(48)}
    with ExitStack() as stack:
        if options.hubs > 1 and not os.environ.get("REDIS_URL"):
            redis = stack.enter_context(private_redis())
            shared["REDIS_URL"] = redis.url
            say(f"private redis-server pid {redis.pid} at {redis.url}")
        hubs = []
        for _ in range(options.hubs):
            hubs.append(stack.enter_context(hub_server(extra_env=shared, workers=options.workers)))
        yield hubs


class Campaign:
    """The state of one run; :meth:`run` returns the process exit code."""

    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        self.options = options
        self.say = say
        self.run_id = secrets.token_hex(4)
        self.results: list[StepResult] = []
        self.settings = RunnerSettings(
            timing=options.timing,
            processes=options.generator_processes,
            run_id=self.run_id,
            estop_rate=options.estop_rate,
            connections_per_vehicle=options.connections_per_vehicle,
        )

    def run(self) -> int:
        """Run everything; 0 if the script worked (whatever the figures), else non-zero."""
        options = self.options
        timing = options.timing
        if options.hubs > 1 and not os.environ.get("DATABASE_URL"):
            raise SystemExit(HUBS_NEED_DATABASE)
        self.say(
            f"capacity run {self.run_id}: hubs={options.hubs} workers={options.workers}; "
            f"modes {','.join(options.modes)}; "
            f"{timing.seconds:g} s measured after {timing.warmup:g} s warm-up per step; "
            f"{options.generator_processes} generator process(es)"
        )
        env = {}
        if self.options.hub_ping_interval is not None:
            env["TVM_WS_PING_INTERVAL_SECONDS"] = str(self.options.hub_ping_interval)
        try:
            with hub_group(options, env, self.say) as hubs:
                self._run_on(hubs)
        except ServerDiedError as error:
            self.say(f"ABORTED: {error}")
            return 1
        finally:
            self._report()
        return self._exit_code()

    def _run_on(self, hubs: list[HubHandle]) -> None:
        hub = hubs[0]
        address = urlsplit(hub.url)
        embedded = not os.environ.get("DATABASE_URL")
        workers = self.options.workers
        probe = ServerProbe(
            *(each.pid for each in hubs),
            db_marker=os.path.join(hub.data_dir, "postgres") if embedded else None,
            tree=workers > 1,
        )
        ports = tuple(urlsplit(each.url).port or 80 for each in hubs) if len(hubs) > 1 else ()
        server = Server(
            "hub",
            address.hostname or "127.0.0.1",
            address.port or 80,
            probe,
            ports=ports,
            workers=workers,
        )
        count = vehicles_needed(self.options)
        for number, each in enumerate(hubs):
            kind = f"parent of {workers} workers, " if workers > 1 else ""
            self.say(f"hub {number}: pid {each.pid} ({kind}at {each.url})")
        self.say(f"registering {count} vehicles through hub 0 (run {self.run_id})")
        admin = trio.run(admin_token, hub.url)
        ids = [f"cap_{self.run_id}_{number:05d}" for number in range(count)]
        register = partial(
            register_vehicles, concurrency=self.options.register_concurrency, progress=self.say
        )
        fleet = trio.run(register, hub.url, ids)
        if len(hubs) > 1:
            time.sleep(REGISTRY_SPREAD_SECONDS)
        baseline = probe.rss()
        self.say(f"hub RSS before the load: {(baseline or 0) / 2**20:.1f} MB")
        for mode in self.options.modes:
            if mode == "estop":
                self._estop(server, fleet, admin, baseline)
            else:
                for vehicles in self.options.steps_for(mode):
                    request = StepRequest(
                        mode,
                        tuple(fleet[:vehicles]),
                        sessions=self.options.sessions if mode == "fanout" else 0,
                        session_token=admin,
                    )
                    self._step(server, request, "hub", baseline)
            if mode == "rest" and self.options.ceiling:
                self._ceiling(ids)
            self.say(mode_table(mode, self.results))

    def _step(
        self,
        server: Server,
        request: StepRequest,
        target: str,
        baseline: int | None,
        extras: dict[str, object] | None = None,
    ) -> StepResult:
        vehicles = len(request.vehicles)
        self.say(f"-- {request.mode} on {target}: {vehicles} vehicles")
        outcome = run_step(server, request, self.settings)
        result = summarize(
            request.mode,
            target,
            vehicles,
            outcome,
            baseline_rss=baseline,
            extras=extras,
            hubs=server.hubs,
            workers=server.workers,
        )
        self.results.append(result)
        self.say(bench_line(result))
        dead = server.probe.dead()
        if dead:
            pids = ", ".join(str(pid) for pid in dead)
            raise ServerDiedError(f"the {server.name} process {pids} exited")
        time.sleep(self.options.pause)
        return result

    def _ceiling(self, ids: list[str]) -> None:
        with ceiling_server() as ceiling:
            probe = ServerProbe(ceiling.pid)
            server = Server("ceiling", "127.0.0.1", ceiling.port, probe)
            credentials = ceiling.credentials(ids[: max(self.options.steps)])
            baseline = probe.rss()
            for vehicles in self.options.steps:
                request = StepRequest("rest", tuple(credentials[:vehicles]))
                self._step(server, request, "ceiling", baseline)

    def _estop_load(self) -> int:
        options = self.options
        if options.estop_load is not None:
            return options.estop_load
        if options.rest_capacity is not None:
            return max(1, int(options.rest_capacity * ESTOP_LOAD_SHARE))
        measured = capacities(self.results).get(("rest", "hub"))
        if measured is not None:
            return max(1, int(measured * ESTOP_LOAD_SHARE))
        fallback = max(1, int(min(options.steps) * ESTOP_LOAD_SHARE))
        self.say(
            f"estop: no REST capacity given or measured; loading with {fallback} vehicles "
            "(80% of the smallest step; pass --rest-capacity or --estop-load)"
        )
        return fallback

    def _estop(
        self, server: Server, fleet: list[Credential], admin: str, baseline: int | None
    ) -> None:
        load = self._estop_load()
        targets = fleet[load : load + self.options.estop_vehicles]
        request = StepRequest(
            "estop",
            tuple(fleet[:load]),
            targets=tuple(targets),
            operator_token=admin,
        )
        extras: dict[str, object] = {"load_vehicles": load, "targets": len(targets)}
        self._step(server, request, "hub", baseline, extras)

    def _report(self) -> None:
        if not self.results:
            return
        self.say(capacity_table(self.results))
        if self.options.plot is not None:
            try:
                write_plot(self.results, self.options.plot)
                self.say(f"plot written to {self.options.plot}")
            except PlotUnavailableError as error:
                self.say(f"no plot: {error}")

    def _exit_code(self) -> int:
        if any(result.failures for result in self.results):
            self.say("FAILED: a generator worker failed (see 'step failed' above)")
            return 2
        for mode in self.options.modes:
            steps = [r for r in self.results if r.mode == mode and r.target == "hub"]
            if not steps or all(r.answered == 0 for r in steps):
                self.say(f"FAILED: nothing at all was answered in mode {mode}")
                return 1
        return 0


def check_open_files(limit: int, options: Options, say: Callable[[str], None]) -> None:
    """Warn when the open-files limit cannot hold the run's sockets (both ends are local)."""
    need = vehicles_needed(options) + options.sessions + FD_HEADROOM
    if limit < need:
        say(f"warning: open-files limit {limit} is below the ~{need} this run may hold open")
