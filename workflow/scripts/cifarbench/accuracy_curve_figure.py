"""Test accuracy against cumulative training time, one line per variant through its
per-epoch points, the targets as horizontal lines (accuracy_curves.png): which variant
reaches a given accuracy first."""

import statistics

import matplotlib.pyplot as plt
import seaborn as sns

from cifarbench.figure_style import chance_line, save
from cifarbench.targets import target_key


def accuracy_points(result: dict) -> list[tuple[float, float]]:
    """(training time, accuracy) at the end of each epoch: the medians over the finished
    replicates evaluated after that epoch."""
    finished = [r for r in result["replicates"] if r["status"] == "ok"]
    by_epoch: dict[int, list[dict]] = {}
    for replicate in finished:
        for epoch in replicate["epochs"]:
            if epoch["accuracy_pct"] is not None:
                by_epoch.setdefault(epoch["epoch"], []).append(epoch)
    return [
        (
            statistics.median(e["clock_s"] for e in epochs),
            statistics.median(e["accuracy_pct"] for e in epochs),
        )
        for _, epochs in sorted(by_epoch.items())
    ]


def accuracy_curves(
    results: list[dict], targets: list[float], path: str, subtitle: str = ""
) -> None:
    """Every variant evaluated after each epoch, as a line; the others are listed."""
    sns.set_theme(style="whitegrid", context="paper")
    figure, axis = plt.subplots(figsize=(8, 5))
    left_out = []
    for result in results:
        points = accuracy_points(result) if result["time_to_target"] is not None else []
        if not points:
            left_out.append(result["variant"])
            continue
        label = result["variant"] + (" (ran on CPU)" if result["device"]["fallback"] else "")
        style = "--" if result["device"]["fallback"] else "-"
        axis.plot(*zip(*points, strict=True), style, marker="o", ms=3, label=label)
    for target in targets:
        axis.axhline(target, color="black", linewidth=0.8, linestyle="-.")
        axis.annotate(f"{target_key(target)}%", (1.0, target), xycoords=("axes fraction", "data"))
    chance_line(axis)
    axis.set_xscale("log")  # recipes finish in seconds, the study's batch 4 in minutes
    axis.set_xlabel("training time (s, log scale; evaluation not on the clock)")
    axis.set_ylabel("test accuracy after the epoch (%)")
    title = "Accuracy against training time: which reaches each target first"
    title += f"\n{subtitle}" if subtitle else ""
    if left_out:
        title += f"\nnot evaluated every epoch, or no finished replicate: {', '.join(left_out)}"
    axis.set_title(title)
    axis.legend(fontsize=7, ncol=2, loc="lower right")
    save(figure, path)
