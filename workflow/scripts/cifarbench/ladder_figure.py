"""The ladder figure: what each optimization buys, rung by rung (optimization_ladder.png)."""

import itertools

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cifarbench.columns import (
    ACCURACY,
    FALLBACK,
    SPEEDUP_VS_BELOW,
    SPEEDUP_VS_BELOW_HIGH,
    SPEEDUP_VS_BELOW_LOW,
    STATUS,
    TIME,
    TIME_HIGH,
    TIME_LOW,
    TIME_VS_BELOW,
    VARIANT,
)
from cifarbench.figure_style import COLORS, bar_kind, run_subtitle, save
from cifarbench.settings import as_written, changed_settings


def ladder(table: pd.DataFrame, results: list[dict], ladders: dict[str, list[str]], path: str):
    """What each optimization buys: one panel per ladder, one bar per rung (its training time
    with its 95% interval, labelled with its accuracy, its speedup over the ladder's first rung
    and, with replicates, the step over the rung below with its interval; a step within noise
    is hatched and says so), each rung named by the setting it turns on."""
    sns.set_theme(style="whitegrid", context="paper")
    rows = table.set_index(VARIANT.header, drop=False)
    settings = {result["variant"]: result["settings"] for result in results}
    present = {name: [r for r in rungs if r in rows.index] for name, rungs in ladders.items()}
    # A step needs two rungs: a ladder with one in this run (the recipe ladder's first rung in
    # the study's run, say) has nothing to show.
    present = {name: rungs for name, rungs in present.items() if len(rungs) > 1}
    heights = [max(2.0, 0.45 * len(rungs) + 1) for rungs in present.values()] or [2.0]
    figure, axes = plt.subplots(
        len(heights),
        1,
        figsize=(9, sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    # Without a ladder in this run (a sweep, say) the one panel says so instead.
    for axis, (name, rungs) in zip(axes[:, 0], present.items(), strict=False):
        _ladder_panel(axis, name, rows.loc[rungs], settings)
    if not present:
        axes[0, 0].text(0.5, 0.5, "no ladder has two rungs in this run", ha="center", va="center")
        axes[0, 0].set_axis_off()
    # The subtitle is the ladders' own (a recipe's 3 epochs elsewhere in the run are not theirs).
    rung_rows = rows.loc[[rung for rungs in present.values() for rung in rungs]]
    figure.suptitle(
        "What each optimization buys (each bar adds the settings it names to the bar above it)\n"
        + run_subtitle(rung_rows if present else table)
    )
    figure.tight_layout()
    save(figure, path)


def _ladder_panel(axis: plt.Axes, name: str, rungs: pd.DataFrame, settings: dict) -> None:
    names = list(rungs[VARIANT.header])
    times = rungs[TIME.header].astype(float)
    base_time = times.iloc[0]
    labels = [f"{names[0]} (stock)"] + [
        f"{rung}\n+ {_change(settings[below], settings[rung])}"
        for below, rung in itertools.pairwise(names)
    ]
    labels = [
        label + ("  [ran on CPU]" if row[FALLBACK.header] else "")
        for label, (_, row) in zip(labels, rungs.iterrows(), strict=True)
    ]
    bars = _time_bars(axis, labels, rungs)
    axis.bar_label(
        bars,
        labels=[_rung_text(row, base_time) for _, row in rungs.iterrows()],
        padding=3,
        fontsize=8,
    )
    axis.invert_yaxis()  # the stock rung on top, the fastest at the bottom
    axis.set_xlabel("training time (s)")
    axis.set_title(f"{name} ladder: from {names[0]} up", loc="left", fontsize=9)
    axis.tick_params(axis="y", labelsize=7)
    axis.margins(x=0.4)  # room right of the longest bar for its label


def _time_bars(axis: plt.Axes, labels: list[str], rungs: pd.DataFrame):
    """One bar per rung with its 95% interval; a step within noise of the rung below hatched."""
    times = rungs[TIME.header].astype(float)
    low, high = rungs[TIME_LOW.header].astype(float), rungs[TIME_HIGH.header].astype(float)
    bars = axis.barh(
        labels,
        times.fillna(0),
        xerr=[(times - low).fillna(0), (high - times).fillna(0)],
        color=[COLORS[bar_kind(r)] for _, r in rungs.iterrows()],
        edgecolor="black",
        linewidth=0.5,
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    within_noise = rungs[TIME_VS_BELOW.header] == "same within noise"
    for bar, noise in zip(bars, within_noise, strict=True):
        bar.set_hatch("///" if noise else None)
    return bars


def _change(below: dict, rung: dict) -> str:
    """The setting a rung turns on, as `key: value`."""
    return ", ".join(f"{key}: {as_written(rung[key])}" for key in changed_settings(below, rung))


def _rung_text(row: pd.Series, base_time: float) -> str:
    """Time, accuracy and speedup over the stock rung, which has no time when it was skipped
    or diverged."""
    if row[STATUS.header] != "ok":
        return row[STATUS.header]
    speedup = "no stock time" if pd.isna(base_time) else f"{base_time / row[TIME.header]:.2f}x"
    return f"{row[TIME.header]:.1f} s, {row[ACCURACY.header]:.2f}%, {speedup}" + _step_text(row)


def _step_text(row: pd.Series) -> str:
    """The step over the rung below: its speedup with the 95% interval and the verdict, or
    nothing without replicates on both rungs."""
    verdict = row[TIME_VS_BELOW.header]
    if not isinstance(verdict, str):
        return ""
    low, high = row[SPEEDUP_VS_BELOW_LOW.header], row[SPEEDUP_VS_BELOW_HIGH.header]
    interval = "" if pd.isna(low) else f" [{low:.2f}, {high:.2f}]"
    return f"\nstep {row[SPEEDUP_VS_BELOW.header]:.2f}x{interval}: {verdict}"
