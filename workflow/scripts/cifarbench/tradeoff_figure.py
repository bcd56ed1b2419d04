"""The accuracy/time trade-off, with its Pareto front (results/accuracy_vs_time.png)."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cifarbench.columns import ACCURACY, ACCURACY_STD, REPLICATES, STATUS, TIME, TIME_STD, VARIANT
from cifarbench.figure_style import (
    CHANCE_PCT,
    COLORS,
    LEGEND,
    bar_kind,
    chance_line,
    run_subtitle,
    save,
)

# Marker shapes say what a point ran on without relying on colour.
MARKERS = {"cuda": "^", "cpu": "o", "fallback": "s", "none": "x"}


def pareto_front(times: list[float], accuracies: list[float]) -> list[int]:
    """Positions of the variants no other one beats on both time and accuracy, fastest first."""
    order = sorted(range(len(times)), key=lambda i: (times[i], -accuracies[i]))
    front, best = [], -math.inf
    for i in order:
        if accuracies[i] > best:
            front.append(i)
            best = accuracies[i]
    return front


def tradeoff(table: pd.DataFrame, path: str) -> None:
    """Accuracy against training time, one labelled point per variant that finished, and the
    Pareto front through the variants no other one beats on both."""
    sns.set_theme(style="whitegrid", context="paper")
    figure, axis = plt.subplots(figsize=(8, 5))
    finished = table[table[STATUS.header] == "ok"]
    _points(axis, finished)
    front = pareto_front(list(finished[TIME.header]), list(finished[ACCURACY.header]))
    if front:
        points = finished.iloc[front]
        axis.plot(
            points[TIME.header],
            points[ACCURACY.header],
            "--",
            color="black",
            linewidth=0.8,
            zorder=2,
            label="Pareto front (named in bold)",
        )
    _names(axis, finished, front)
    left_out = table.loc[table[STATUS.header] != "ok", VARIANT.header]
    if finished[ACCURACY.header].min() < 3 * CHANCE_PCT:  # near chance: show where chance is
        chance_line(axis)
    title = f"Accuracy against training time (up and left is better)\n{run_subtitle(table)}"
    if len(left_out):
        title += f"\nnot shown (skipped or diverged): {', '.join(left_out)}"
    axis.set_title(title)
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("test accuracy (%)")
    if len(finished):
        axis.legend(fontsize=8)
    save(figure, path)


def short_names(names: list[str]) -> list[str]:
    """The cells' values alone (`b16-w4`) when every name is a cell of one sweep."""
    sweeps = {name.rpartition(".")[0] for name in names}
    if len(sweeps) == 1 and "" not in sweeps:
        return [name.rpartition(".")[2] for name in names]
    return names


def _names(axis: plt.Axes, finished: pd.DataFrame, front: list[int]) -> None:
    """Each point's name beside it, the front's in bold; a name that would sit on another's
    (the points close together) moves down a line."""
    names = short_names(list(finished[VARIANT.header]))
    times, accuracies = list(finished[TIME.header]), list(finished[ACCURACY.header])
    x_near = 0.1 * (max(times, default=0) - min(times, default=0) or 1)
    y_near = 0.03 * (max(accuracies, default=0) - min(accuracies, default=0) or 1)
    placed: list[int] = []
    for position in sorted(range(len(names)), key=lambda i: times[i]):
        crowd = sum(
            abs(times[i] - times[position]) < x_near
            and abs(accuracies[i] - accuracies[position]) < y_near
            for i in placed
        )
        placed.append(position)
        axis.annotate(
            names[position],
            (times[position], accuracies[position]),
            textcoords="offset points",
            xytext=(4, 4 - 9 * crowd),
            fontsize=7,
            fontweight="bold" if position in front else "normal",
        )


def _points(axis: plt.Axes, finished: pd.DataFrame) -> None:
    """One point per variant, coloured by what it ran on; error bars of one standard
    deviation each way where it has several replicates."""
    kinds = finished.apply(bar_kind, axis=1)
    for kind, group in finished.groupby(kinds):
        several = group[REPLICATES.header] > 1
        axis.errorbar(
            group[TIME.header],
            group[ACCURACY.header],
            xerr=group[TIME_STD.header].where(several, 0),
            yerr=group[ACCURACY_STD.header].where(several, 0),
            fmt=MARKERS[kind],
            color=COLORS[kind],
            markeredgecolor="black",
            label=LEGEND[kind],
            capsize=3,
            zorder=3,
        )
