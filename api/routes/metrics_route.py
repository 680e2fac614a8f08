"""``GET /metrics``: Prometheus text, with current-state gauges read at scrape time."""

from __future__ import annotations

import os
from collections import Counter as Tally

from quart import Quart, Response
from quart_schema import security_scheme, tag

from api.context import HubServices
from hub import metrics


def refresh_gauges(services: HubServices) -> None:
    """Set the gauges that describe the hub right now."""
    worker_id = services.settings.worker_id
    metrics.worker_info.labels("" if worker_id is None else str(worker_id), str(os.getpid())).set(1)
    for state, count in services.health.pool_usage().items():
        metrics.db_pool_usage.labels(state).set(count)
    snapshot = services.actors.snapshot()
    depth: Tally[str] = Tally()
    restarts: Tally[str] = Tally()
    kinds: Tally[str] = Tally()
    queued = 0
    for actor in snapshot:
        kind = str(actor["kind"])
        kinds[kind] += 1
        depth[kind] += int(actor.get("mailbox_depth", 0))
        restarts[kind] += int(actor.get("restarts", 0))
        queued += int(actor.get("queue_depth", 0) or 0)
    for kind in set(kinds) | {"vehicle", "session"}:
        metrics.actor_mailbox_depth.labels(kind).set(depth[kind])
        metrics.actor_restarts.labels(kind).set(restarts[kind])
    metrics.offline_queue_depth.set(queued)
    connected = sum(1 for actor in snapshot if actor.get("connection") == "connected")
    metrics.active_connections.labels("vehicle").set(connected)
    metrics.active_connections.labels("frontend").set(kinds["session"])
    metrics.writer_queue_depth.set(services.health.writer_queue_depth())


def register(app: Quart, services: HubServices) -> None:
    """Add ``/metrics``."""

    @tag(["operations"])
    @security_scheme([])
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of the hub.

        Text exposition format: requests, latency, connections, pool, telemetry, commands,
        mailboxes, offline queues, alerts. No token needed (keep it off the public network).
        """
        refresh_gauges(services)
        return Response(
            metrics.exposition(), mimetype="text/plain", content_type="text/plain; version=0.0.4"
        )

    app.add_url_rule("/metrics", view_func=prometheus_metrics, methods=["GET"])
