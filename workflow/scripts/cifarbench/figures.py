"""A run's figures, listed once: the plot rule and benchmarks/publish_results.py both draw
them through `draw_figures`."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cifarbench import (
    accuracy_curve_figure,
    comparison_figure,
    ladder_figure,
    loss_figure,
    sweep_figure,
    tradeoff_figure,
)
from cifarbench.columns import targets_of
from cifarbench.figure_style import run_subtitle


def draw_figures(
    table: pd.DataFrame,
    results: list[dict],
    ladders: dict[str, list[str]],
    heatmap_sweeps: dict[str, dict[str, dict]],
    folder: str | Path,
) -> list[str]:
    """Draw every figure of a run into `folder` and return their paths under it. `table`:
    the run's table (table.build_table); `heatmap_sweeps`: config.heatmap_sweeps."""
    figures = _figures(table, results, ladders, heatmap_sweeps)
    for name, draw in figures.items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(str(path))
    return list(figures)


def _figures(table, results, ladders, heatmap_sweeps) -> dict[str, Callable[[str], None]]:
    """Each figure's path under the report folder -> what draws it there."""
    subtitle = run_subtitle(table)
    figures = {
        "optimization_techniques_comparison.png": lambda p: comparison_figure.comparison(table, p),
        "loss_curves.png": lambda p: loss_figure.loss_curves(results, p, subtitle),
        "accuracy_vs_time.png": lambda p: tradeoff_figure.tradeoff(table, p),
        "optimization_ladder.png": lambda p: ladder_figure.ladder(table, results, ladders, p),
        "accuracy_curves.png": lambda p: accuracy_curve_figure.accuracy_curves(
            results, targets_of(results), p, subtitle
        ),
    }
    for sweep, cells in heatmap_sweeps.items():
        figures[f"sweeps/{sweep}.png"] = lambda p, s=sweep, c=cells: sweep_figure.heatmaps(
            s, c, results, p, subtitle
        )
    return figures
