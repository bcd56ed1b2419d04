"""results/compare/machines.png: time and accuracy per variant, the machines side by side."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch

from cifarbench.columns import ACCURACY, DEVICE_NAME, FALLBACK, MACHINE, STATUS, TIME, VARIANT
from cifarbench.compare import SAME_SETTINGS
from cifarbench.figure_style import chance_line, save

PANELS = [(TIME.header, "Training time (s)"), (ACCURACY.header, "Accuracy (%)")]
# What makes a bar unlike the others, drawn over its machine's colour.
HATCHES = {
    "fallback": ("//", "GPU variant, ran on CPU (no CUDA)"),
    "other settings": ("xx", "other settings than on the first machine: not compared"),
}


def machines(rows: pd.DataFrame, path: str) -> None:
    sns.set_theme(style="whitegrid", context="paper")
    variants = list(dict.fromkeys(rows[VARIANT.header]))
    labels = list(dict.fromkeys(rows[MACHINE.header]))
    colors = dict(zip(labels, sns.color_palette("colorblind", len(labels)), strict=True))
    width = max(6.0, 0.35 * len(variants) * len(labels) + 2)
    figure, axes = plt.subplots(2, 1, figsize=(width, 8), sharex=True)
    for axis, (column, axis_label) in zip(axes, PANELS, strict=True):
        for index, label in enumerate(labels):
            machine = rows[rows[MACHINE.header] == label].set_index(VARIANT.header)
            offset = (index - (len(labels) - 1) / 2) * 0.8 / len(labels)
            _bars(axis, machine.reindex(variants), column, offset, 0.8 / len(labels), colors[label])
        axis.set_ylabel(axis_label)
        axis.margins(y=0.2)
        axis.set_ylim(bottom=0)
    chance_line(axes[1])
    axes[-1].set_xticks(range(len(variants)), variants, rotation=30, ha="right")
    axes[0].set_title(f"The same variants on {len(labels)} machines\n{_devices(rows, labels)}")
    _legend(axes[0], colors, rows)
    save(figure, path)


def _bars(axis, machine: pd.DataFrame, column: str, offset: float, width: float, color) -> None:
    """One machine's bars, at `offset` from each variant's place; a variant it did not run
    is a gap labelled as such."""
    values = machine[column].astype(float)
    bars = axis.bar(
        np.arange(len(machine)) + offset,
        values.fillna(0),
        width,
        color=color,
        edgecolor="black",
        linewidth=0.5,
    )
    for bar, (_, row) in zip(bars, machine.iterrows(), strict=True):
        bar.set_hatch(HATCHES[_kind(row)][0] if _kind(row) else None)
    texts = [
        _value_text(value, row) for value, (_, row) in zip(values, machine.iterrows(), strict=True)
    ]
    axis.bar_label(bars, labels=texts, padding=2, fontsize=6, rotation=90)


def _kind(row: pd.Series) -> str | None:
    if row[SAME_SETTINGS.header] is False:
        return "other settings"
    return "fallback" if row[FALLBACK.header] is True else None


def _value_text(value: float, row: pd.Series) -> str:
    if pd.isna(row[STATUS.header]):
        return "not run"
    if row[STATUS.header] != "ok":
        return row[STATUS.header]
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _devices(rows: pd.DataFrame, labels: list[str]) -> str:
    """What each machine ran on, as its rows name it."""
    described = []
    for label in labels:
        names = rows.loc[rows[MACHINE.header] == label, DEVICE_NAME.header].dropna().unique()
        described.append(f"{label}: {', '.join(sorted(names)) or 'nothing finished'}")
    return "; ".join(described)


def _legend(axis: plt.Axes, colors: dict, rows: pd.DataFrame) -> None:
    handles = [
        Patch(facecolor=color, edgecolor="black", label=label) for label, color in colors.items()
    ]
    kinds = {_kind(row) for _, row in rows.iterrows()}
    handles += [
        Patch(facecolor="white", edgecolor="black", hatch=hatch, label=meaning)
        for kind, (hatch, meaning) in HATCHES.items()
        if kind in kinds
    ]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
