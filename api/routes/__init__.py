"""HTTP routes, one module per area; each exposes ``register(app, services)``."""
