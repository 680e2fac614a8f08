"""Prometheus metrics of the hub (CONTRACT §9, TVM-OBS-001).

Counters and histograms are updated where things happen; gauges that describe current
state (connections, pool, mailboxes, queues) are read when ``/metrics`` is scraped, so the
hot path pays nothing for them. One hub per process: the instruments are module-level.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

request_count = Counter(
    "request_count", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY
)
request_duration = Histogram(
    "request_duration_seconds",
    "Time from request start to response, by route and status",
    ["route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
active_connections = Gauge(
    "active_connections", "Open WebSocket connections by kind", ["kind"], registry=REGISTRY
)
db_pool_usage = Gauge(
    "db_pool_usage", "Database pool connections by state", ["state"], registry=REGISTRY
)
telemetry_ingested = Counter(
    "telemetry_ingested", "Telemetry records stored, by kind", ["kind"], registry=REGISTRY
)
telemetry_duplicates = Counter(
    "telemetry_duplicates",
    "Telemetry records skipped as duplicates, by kind",
    ["kind"],
    registry=REGISTRY,
)
commands_finished = Counter(
    "commands", "Commands by the status they settled in", ["type", "status"], registry=REGISTRY
)
command_latency = Histogram(
    "command_latency_seconds",
    "Time from a command's send to the vehicle's first acknowledgement, by command type",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
    registry=REGISTRY,
)
actor_mailbox_depth = Gauge(
    "actor_mailbox_depth",
    "Messages waiting in actor mailboxes, by actor kind",
    ["kind"],
    registry=REGISTRY,
)
actor_restarts = Gauge(
    "actor_restarts", "Restarts of live actors, by actor kind", ["kind"], registry=REGISTRY
)
offline_queue_depth = Gauge(
    "offline_queue_depth", "Commands queued for offline vehicles (all vehicles)", registry=REGISTRY
)
alerts_raised = Counter(
    "alerts_raised", "Alerts raised, by severity", ["severity"], registry=REGISTRY
)
router_undelivered = Counter(
    "router_undelivered",
    "Messages the overloaded Router could not take: telemetry dropped, must-deliver lost",
    ["message"],
    registry=REGISTRY,
)
writes_skipped = Counter(
    "writes_skipped",
    "Command status writes skipped because a vehicle's persistence lane was full",
    registry=REGISTRY,
)
audit_repeats = Counter(
    "audit_repeats",
    "Security events counted on an earlier audit row instead of a new one",
    ["action"],
    registry=REGISTRY,
)
rate_limit_unavailable = Counter(
    "rate_limit_unavailable",
    "Rate-limit takes let through unchecked because the shared buckets (Redis) did not answer,"
    " by kind",
    ["kind"],
    registry=REGISTRY,
)
replica_fallbacks = Counter(
    "database_replica_fallbacks",
    "History and audit reads served by the primary because the read replica failed",
    registry=REGISTRY,
)
connection_faults = Counter(
    "connection_faults",
    "Connections ended by an error in the HTTP server itself (the rest of the hub served on)",
    registry=REGISTRY,
)
worker_info = Gauge(
    "hub_worker_info",
    "Always 1: which process answered (worker 0 to N - 1 under serve --workers N, empty when"
    " the hub runs as one process) and its pid",
    ["worker", "pid"],
    registry=REGISTRY,
)
writer_queue_depth = Gauge(
    "writer_queue_depth", "Write requests waiting for the next group commit", registry=REGISTRY
)


gc_pause = Histogram(
    "gc_pause_seconds",
    "Time the event loop stood still in a garbage collection, by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)

_STALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

group_commit = Histogram(
    "group_commit_seconds",
    "Time one group commit of the Writer took (each attempt, failed ones included)",
    buckets=_STALL_BUCKETS,
    registry=REGISTRY,
)

loop_lag = Histogram(
    "event_loop_lag_seconds",
    "How late a task that asked to wake after 100 ms woke: the event loop was busy meanwhile",
    buckets=_STALL_BUCKETS,
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The Prometheus text format of every metric."""
    return generate_latest(REGISTRY)
