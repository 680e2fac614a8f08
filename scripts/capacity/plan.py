"""What one generator process is asked to do in one step (picklable), and the step's timing.

The orchestrator builds one :class:`StepPlan` per worker; the worker reports ready, receives
the step's start time, and runs the mode. :func:`measured_window` is the single definition of
which part of a step is measured, used by the workers and by the orchestrator's sampling.

With several hubs (``--hubs N``, :attr:`StepPlan.ports`) the load is spread by index:
vehicle ``i`` posts to and holds its socket on hub ``i % N``, fleet session ``j`` (numbered
over the whole step) is on hub ``(j + 1) % N``, and the operator sends target ``i``'s stops
to hub ``(i + 1) % N``, so with N > 1 every fan-out and every stop crosses between hubs for
some of the vehicles (fleet sessions see every hub's vehicles; stops always cross).
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.capacity.timetable import Window

MODES = ("rest", "ws", "fanout", "idle", "estop", "storm")


@dataclass(frozen=True, slots=True)
class Credential:
    """A registered vehicle, its access token, and its place in the step (for its phase)."""

    vehicle_id: str
    token: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class Timing:
    """Durations of a step, in seconds, and how connections are opened."""

    warmup: float = 5.0
    seconds: float = 20.0
    timeout: float = 10.0
    ramp: float = 20.0
    storm_window: float = 1.0
    connect_timeout: float = 10.0
    connect_concurrency: int = 64

    def prepare_bound(self, vehicles: int) -> float:
        """How long a worker may take to open its connections before the step starts."""
        return 60.0 + vehicles / 20


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One worker's share of one step."""

    mode: str
    host: str
    port: int
    worker: int
    run_id: str
    population: int
    vehicles: tuple[Credential, ...]
    timing: Timing
    sessions: int = 0
    session_token: str = ""
    targets: tuple[Credential, ...] = ()
    operator_token: str = ""
    estop_rate: float = 5.0
    connections_per_vehicle: int = 4
    ports: tuple[int, ...] = ()
    """Every hub's port (hub 0 first); empty means the one hub on ``port``."""
    session_base: int = 0
    """The step-wide number of this worker's first fleet session."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (for ``port``)."""
        return self.host_header_for(self.port)

    def host_header_for(self, port: int) -> str:
        """The ``Host`` header value for the hub on ``port``."""
        return f"{self.host}:{port}"

    @property
    def hub_ports(self) -> tuple[int, ...]:
        """The hubs' ports: ``ports``, or just ``port``."""
        return self.ports or (self.port,)

    def vehicle_port(self, index: int) -> int:
        """The hub vehicle ``index`` talks to (REST and socket): hub ``index % N``."""
        ports = self.hub_ports
        return ports[index % len(ports)]

    def session_port(self, number: int) -> int:
        """The hub of this worker's fleet session ``number`` (step-wide ``session_base +
        number``, call it j): hub ``(j + 1) % N``."""
        ports = self.hub_ports
        return ports[(self.session_base + number + 1) % len(ports)]

    def operator_port(self, index: int) -> int:
        """The hub that receives target ``index``'s stops: ``(index + 1) % N``, one other than
        the hub holding its socket whenever there are several."""
        ports = self.hub_ports
        return ports[(index + 1) % len(ports)]


def measured_window(mode: str, timing: Timing, start_ms: int) -> Window:
    """The measured part of a step that starts at ``start_ms``.

    Steady modes (rest, ws, fanout, estop) measure ``seconds`` after ``warmup``. ``idle``
    measures everything: the ramp, then the hold. ``storm`` measures the connect window, the
    burst at its end, then ``seconds`` of holding the sockets.
    """
    if mode == "idle":
        return Window(start_ms, start_ms + round((timing.ramp + timing.seconds) * 1000))
    if mode == "storm":
        return Window(start_ms, start_ms + round((timing.storm_window + timing.seconds) * 1000))
    begin = start_ms + round(timing.warmup * 1000)
    return Window(begin, begin + round(timing.seconds * 1000))


def step_bound(mode: str, timing: Timing, vehicles: int) -> float:
    """An upper bound on a whole step's wall time, in seconds (workers are stopped after it)."""
    return (
        timing.prepare_bound(vehicles)
        + timing.warmup
        + timing.seconds
        + timing.ramp
        + timing.storm_window
        + timing.connect_timeout
        + 2 * timing.timeout
        + 30.0
    )
