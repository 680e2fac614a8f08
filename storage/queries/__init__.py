"""Parameterised SQL for everything that is not telemetry ingestion (that is the Writer's)."""
