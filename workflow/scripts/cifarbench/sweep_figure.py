"""Heatmaps of a two-axis sweep: training time and accuracy over the grid, each cell's mean
written in it, and the cells that do not differ from the best one outlined."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from cifarbench import stats
from cifarbench.document import replicate_values
from cifarbench.figure_style import save

PANELS = [  # (metric, title, colour map, whether lower is better)
    ("training_time_s", "training time (s)", "viridis_r", True),
    ("accuracy_pct", "test accuracy (%)", "viridis", False),
]


def heatmaps(
    sweep: str, cells: dict[str, dict], results: list[dict], path: str, subtitle: str = ""
) -> None:
    """`cells`: each cell's variant name -> its values on the sweep's two axes."""
    by_name = {result["variant"]: result for result in results}
    row_axis, column_axis = next(iter(cells.values()))
    sns.set_theme(style="white", context="paper")
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for axis, (metric, title, colours, lower_is_better) in zip(axes, PANELS, strict=True):
        values = {
            name: replicate_values(by_name[name], metric) for name in cells if name in by_name
        }
        grid = _grid(cells, values, row_axis, column_axis)
        sns.heatmap(grid, annot=True, fmt=".1f", cmap=colours, ax=axis, cbar=False)
        for row, column in _as_good_as_best(
            cells, values, grid, lower_is_better, row_axis, column_axis
        ):
            axis.add_patch(
                plt.Rectangle((column, row), 1, 1, fill=False, linewidth=2.5, edgecolor="red")
            )
        axis.set_title(title)
    figure.suptitle(
        f"Sweep {sweep}: mean over replicates; outlined: not different from the best cell "
        f"(Welch's t-test, p >= {stats.ALPHA})" + (f"\n{subtitle}" if subtitle else "")
    )
    figure.tight_layout()
    save(figure, path)


def _grid(cells: dict, values: dict, row_axis: str, column_axis: str) -> pd.DataFrame:
    rows = list(dict.fromkeys(v[row_axis] for v in cells.values()))
    columns = list(dict.fromkeys(v[column_axis] for v in cells.values()))
    grid = pd.DataFrame(
        np.nan, index=pd.Index(rows, name=row_axis), columns=pd.Index(columns, name=column_axis)
    )
    for name, cell in cells.items():
        if values.get(name):
            grid.loc[cell[row_axis], cell[column_axis]] = np.mean(values[name])
    return grid


def _as_good_as_best(cells, values, grid, lower_is_better, row_axis, column_axis):
    """(row, column) positions of the best cell and of those the test cannot tell from it."""
    measured = [name for name in cells if values.get(name)]
    if not measured:
        return []
    pick = min if lower_is_better else max
    best = pick(measured, key=lambda name: np.mean(values[name]))
    marked = []
    for name in measured:
        if name == best or stats.indistinguishable(values[name], values[best]):
            cell = cells[name]
            marked.append(
                (grid.index.get_loc(cell[row_axis]), grid.columns.get_loc(cell[column_axis]))
            )
    return marked
