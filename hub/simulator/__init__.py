"""Simulated vehicles for exercising a hub: ``tvm-hub simulate`` (CONTRACT §2–§4, §6.1, §6.3).

- :mod:`~hub.simulator.vehicle_model` — one vehicle without I/O (state machine, reports);
- :mod:`~hub.simulator.client` and :mod:`~hub.simulator.vehicle_socket` — its REST and
  WebSocket I/O; :mod:`~hub.simulator.hub_api` — the REST calls;
- :mod:`~hub.simulator.runner` — the fleet, the progress display, the clean stop;
- :mod:`~hub.simulator.testing` and :mod:`~hub.simulator.fake_hub` — helpers for tests.

Importing this package imports nothing else (the CLI imports :mod:`~hub.simulator.options`).
"""
