"""The study's comparison figure: time, accuracy and memory panels with value labels, our
numbers beside the study's own (optimization_techniques_comparison.png)."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from cifarbench.columns import (
    ACCURACY,
    ACCURACY_STD,
    EPOCHS,
    FALLBACK,
    MEMORY,
    MEMORY_STD,
    REPLICATES,
    STATUS,
    STUDY_ACCURACY,
    STUDY_CPU_MACHINE,
    STUDY_EPOCHS,
    STUDY_MACHINE,
    STUDY_MEMORY,
    STUDY_TIME,
    TIME,
    TIME_STD,
    TIME_TO_PREFIX,
    VARIANT,
    study_machine,
)
from cifarbench.figure_style import COLORS, LEGEND, bar_kind, chance_line, run_subtitle, save

PANELS = [  # (column, std column, the study's column, axis label), the study's three panels
    (TIME.header, TIME_STD.header, STUDY_TIME.header, "Training time (s)"),
    (ACCURACY.header, ACCURACY_STD.header, STUDY_ACCURACY.header, "Accuracy (%)"),
    (MEMORY.header, MEMORY_STD.header, STUDY_MEMORY.header, "Memory usage (MB, mean RSS)"),
]


def comparison(table: pd.DataFrame, path: str) -> None:
    """Three stacked bar panels (time, accuracy, memory) with value labels, as in the study;
    error bars when a variant has more than one replicate. Where the table has targets, a
    fourth panel gives each variant's time to each target."""
    sns.set_theme(style="whitegrid", context="paper")
    kinds = table.apply(bar_kind, axis=1)
    labels = table.apply(_label, axis=1)
    targets = _target_headers(table)
    figure, axes = _panels(len(table), len(PANELS) + bool(targets))
    for axis, (column, std_column, study_column, axis_label) in zip(axes, PANELS, strict=False):
        values = table[column].astype(float)
        errors = table[std_column].where(table[REPLICATES.header] > 1).astype(float)
        bars = axis.bar(
            labels,
            values.fillna(0),
            yerr=errors.fillna(0) if errors.notna().any() else None,
            capsize=4,
            color=[COLORS[kind] for kind in kinds],
            edgecolor="black",
            linewidth=0.5,
        )
        axis.bar_label(
            bars,
            labels=[_value_text(v, s) for v, s in zip(values, table[STATUS.header], strict=True)],
            padding=2,
            fontsize=8,
        )
        _study_markers(axis, bars, table[study_column].astype(float), table[VARIANT.header])
        axis.set_ylabel(axis_label)
        axis.margins(y=0.18)
        axis.set_ylim(bottom=0)  # all skipped: no negative axis around empty bars
    if targets:
        _targets_panel(axes[-1], table, targets)
    chance_line(axes[1])
    axes[0].set_title(
        f"CIFAR-10 training optimizations compared\n{run_subtitle(table)}{_study_epochs(table)}"
    )
    axes[-1].tick_params(axis="x", labelrotation=30)
    plt.setp(axes[-1].get_xticklabels(), ha="right", rotation_mode="anchor")
    _legend(axes[0], set(kinds))
    save(figure, path)


def _panels(variants: int, rows: int) -> tuple[plt.Figure, list[plt.Axes]]:
    """Stacked panels sharing the variants' axis, each as tall as the study's three."""
    width = max(6.0, 0.9 * variants + 2)
    return plt.subplots(rows, 1, figsize=(width, 11 * rows / 3), sharex=True)


def _target_headers(table: pd.DataFrame) -> list[str]:
    """The time-to-target columns, where some variant reached its target."""
    headers = [h for h in table.columns if h.startswith(TIME_TO_PREFIX) and h.endswith("(s)")]
    return headers if table[headers].notna().any().any() else []


def _targets_panel(axis: plt.Axes, table: pd.DataFrame, headers: list[str]) -> None:
    """One bar per target beside each other for each variant; "not reached" where none."""
    width = 0.8 / len(headers)
    for k, header in enumerate(headers):
        values = table[header].astype(float)
        positions = [i - 0.4 + width * (k + 0.5) for i in range(len(table))]
        name = header.removeprefix(TIME_TO_PREFIX).removesuffix(" (s)")
        bars = axis.bar(positions, values.fillna(0), width, label=f"to {name}", edgecolor="black")
        texts = ["not reached" if pd.isna(v) else f"{v:.1f}" for v in values]
        axis.bar_label(bars, labels=texts, padding=2, fontsize=6, rotation=90)
    axis.set_ylabel("Time to target (s)")
    axis.margins(y=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def _study_markers(axis: plt.Axes, bars, study: pd.Series, variants: pd.Series) -> None:
    """The study's own number for a variant, as a marker on the right edge of its bar: a
    diamond for its GPU runs, a square for its CPU run, each labelled with where it ran."""
    right_edges = pd.Series([bar.get_x() + bar.get_width() for bar in bars], index=study.index)
    machines = variants.map(study_machine)
    for machine, marker in ((STUDY_MACHINE, "D"), (STUDY_CPU_MACHINE, "s")):
        shown = study.notna() & (machines == machine)
        if shown.any():
            axis.scatter(
                right_edges[shown],
                study[shown],
                marker=marker,
                s=22,
                color="black",
                zorder=5,
                label=f"{machine}, {STUDY_EPOCHS} epochs",
            )


def _study_epochs(table: pd.DataFrame) -> str:
    """A line under the subtitle when the study's markers trained other epochs than the bars."""
    shown = table[STUDY_TIME.header].notna() | table[STUDY_ACCURACY.header].notna()
    ran = sorted({int(e) for e in table.loc[shown, EPOCHS.header].dropna()})
    if not ran or ran == [STUDY_EPOCHS]:
        return ""
    bars = " or ".join(map(str, ran))
    return (
        f"\nmarkers: the study's {STUDY_EPOCHS}-epoch runs; bars: this run's {bars} "
        f"epoch{'' if ran == [1] else 's'}"
    )


def _value_text(value: float, status: str) -> str:
    return status if pd.isna(value) or status != "ok" else f"{value:.2f}"


def _legend(axis: plt.Axes, kinds: set[str]) -> None:
    """What the colours and markers mean, outside the top panel so it never hides a bar."""
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k]) for k in COLORS if k in kinds]
    names = [LEGEND[k] for k in COLORS if k in kinds]
    markers, marker_names = axis.get_legend_handles_labels()
    axis.legend(
        [*handles, *markers],
        [*names, *marker_names],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )


def _label(row: pd.Series) -> str:
    """The variant's name, with what makes its numbers different written under it."""
    name = row[VARIANT.header]
    if row[STATUS.header] != "ok":
        return f"{name}\n({row[STATUS.header]})"
    return f"{name}\n(ran on CPU)" if row[FALLBACK.header] else name
