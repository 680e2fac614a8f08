"""``--plot FILE.png``: p50/p99 latency against vehicles, one subplot per mode (log y).

matplotlib is optional: without it :func:`write_plot` raises :class:`PlotUnavailableError`
with a clear message and the run's figures are still printed. The rest subplot also shows the
stack ceiling; every subplot shows its mode's pass threshold.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

from scripts.capacity.report import StepResult


class PlotUnavailableError(Exception):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        pyplot = importlib.import_module("matplotlib.pyplot")
    except ImportError as error:
        raise PlotUnavailableError(
            "--plot needs matplotlib (pip install matplotlib); figures were printed anyway"
        ) from error
    return pyplot


def write_plot(results: list[StepResult], path: Path) -> None:
    """Write the figure to ``path`` (PNG). Blocks while rendering."""
    pyplot = _pyplot()
    modes = list(dict.fromkeys(result.mode for result in results))
    if not modes:
        return
    columns = min(3, len(modes))
    rows = math.ceil(len(modes) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(5 * columns, 3.8 * rows), squeeze=False)
    for number, mode in enumerate(modes):
        axis = axes[number // columns][number % columns]
        for target, style in (("hub", "-"), ("ceiling", "--")):
            steps = sorted(
                (r for r in results if r.mode == mode and r.target == target and r.p99_ms),
                key=lambda r: r.vehicles,
            )
            if not steps:
                continue
            vehicles = [r.vehicles for r in steps]
            label = "stack ceiling" if target == "ceiling" else "hub"
            axis.plot(vehicles, [r.p50_ms for r in steps], style, marker="o", label=f"{label} p50")
            axis.plot(vehicles, [r.p99_ms for r in steps], style, marker="s", label=f"{label} p99")
        axis.set_xticks(sorted({r.vehicles for r in results if r.mode == mode}))
        threshold = next(r.threshold_ms for r in results if r.mode == mode)
        axis.axhline(threshold, color="grey", linewidth=0.8, linestyle=":", label="threshold")
        axis.set_yscale("log")
        axis.set_title(mode)
        axis.set_xlabel("vehicles")
        axis.set_ylabel("latency ms")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    for number in range(len(modes), rows * columns):
        axes[number // columns][number % columns].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
