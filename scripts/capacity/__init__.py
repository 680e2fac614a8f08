"""The capacity benchmark (``python -m scripts.bench_capacity``), one job per module.

- :mod:`.clock` — the bench clock shared by all processes, wire timestamps.
- :mod:`.timetable` — the open-loop schedule (who sends when) and the measured window.
- :mod:`.recorder` — counters and latency samples of one worker, merged across workers.
- :mod:`.http_client` — a minimal keep-alive HTTP/1.1 client over trio sockets.
- :mod:`.ws_client` — a minimal WebSocket client (wsproto over trio sockets).
- :mod:`.vehicle_socket` / :mod:`.fleet_session` — a vehicle's and a frontend's socket role.
- :mod:`.modes` — one module per mode (rest, ws, fanout, idle, estop, storm).
- :mod:`.plan` — what one generator process is asked to do in one step, and which hub each
  vehicle, fleet session and stop goes to (``--hubs``).
- :mod:`.worker` — the generator process: runs one mode for one step.
- :mod:`.runner` — the orchestrator's side of a step: spawns workers, samples the server.
- :mod:`.procstats` — CPU and RSS of the server under test (one process, a ``--workers``
  process tree, or the sum over ``--hubs``).
- :mod:`.redis_server` — the private redis-server of a ``--hubs`` run without ``REDIS_URL``.
- :mod:`.registration` — registering and logging in the vehicles.
- :mod:`.ceiling_app` / :mod:`.ceiling` — the no-op stack ceiling server and its launcher.
- :mod:`.report` — tables, ``BENCH`` JSON lines, capacity; :mod:`.plot` — the figure.
- :mod:`.options` — command-line options and the ``--smoke`` preset.

Only the public HTTP/WebSocket interface is used; nothing here imports api, actors or storage.
"""
