"""What every figure shares: colours by what a variant really ran on, a subtitle naming what
the numbers depend on, the chance line, and saving at 300 dpi.

Every figure marks a variant that ran on a fallback device, was skipped or diverged: such a
variant is never drawn as if it were an ordinary result.
"""

import matplotlib

matplotlib.use("Agg")  # no display on the machines this runs on


import matplotlib.pyplot as plt
import pandas as pd

from cifarbench.atomic import atomic_path
from cifarbench.columns import (
    DEVICE_NAME,
    DEVICE_USED,
    EPOCHS,
    FALLBACK,
    STATUS,
    TEST_IMAGES,
    TRAIN_IMAGES,
)

DPI = 300
COLORS = {"cuda": "#4c72b0", "cpu": "#55a868", "fallback": "#dd8452", "none": "#bbbbbb"}
LEGEND = {
    "cuda": "ran on GPU",
    "cpu": "ran on CPU",
    "fallback": "GPU variant, ran on CPU (no CUDA)",
    "none": "skipped or diverged",
}
CHANCE_PCT = 10  # ten balanced classes: what guessing scores


def bar_kind(row: pd.Series) -> str:
    """Which colour a variant's bar gets: what it really ran on."""
    if row[STATUS.header] != "ok":
        return "none"
    return "fallback" if row[FALLBACK.header] else row[DEVICE_USED.header]


def run_subtitle(table: pd.DataFrame) -> str:
    """What every figure's numbers depend on: the epochs, the data's size, where they ran."""
    finished = table[table[STATUS.header] == "ok"]
    if finished.empty:
        return "no variant finished"

    def values(column) -> str:
        counts = sorted({int(v) for v in finished[column.header].dropna()})  # floats in a CSV
        return " or ".join(f"{v:,}" for v in counts)

    devices = ", ".join(sorted(finished[DEVICE_NAME.header].dropna().unique()))
    epochs = values(EPOCHS)
    return (
        f"{epochs} epoch{'' if epochs == '1' else 's'}, {values(TRAIN_IMAGES)} training and "
        f"{values(TEST_IMAGES)} test images; ran on {devices}"
    )


def chance_line(axis: plt.Axes) -> None:
    """What guessing scores, labelled on the line itself (a legend may be far from it)."""
    axis.axhline(CHANCE_PCT, color="grey", linestyle=":", linewidth=1)
    axis.annotate(
        f"chance ({CHANCE_PCT}%)",
        xy=(0, CHANCE_PCT),
        xycoords=("axes fraction", "data"),
        xytext=(2, 2),
        textcoords="offset points",
        color="grey",
        fontsize=7,
    )


def save(figure: plt.Figure, path: str) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(figure)
