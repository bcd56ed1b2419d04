"""Where each ladder rung's step time goes (step_profile.png): one stacked bar per rung, the
mean step split into the parts cifarbench.step_profile measures."""

import matplotlib.pyplot as plt
import seaborn as sns

from cifarbench.figure_style import save
from cifarbench.step_profile import PARTS

SHOWN = (*PARTS, "rest")
NAMES = {
    "data_wait": "waiting for data",
    "copy": "copy to device",
    "forward": "forward",
    "backward": "backward",
    "optimizer": "optimizer step",
    "rest": "rest (Python, framework)",
}


def step_profile(profiles: dict[str, dict], ladders: dict[str, list[str]], path: str) -> None:
    """One panel per ladder with a profiled rung; `profiles`: variant -> its profile
    document (train.run_profile)."""
    sns.set_theme(style="whitegrid", context="paper")
    panels = {name: [rung for rung in rungs if rung in profiles] for name, rungs in ladders.items()}
    panels = {name: rungs for name, rungs in panels.items() if rungs}
    heights = [0.45 * len(rungs) + 1.2 for rungs in panels.values()] or [2]
    figure, axes = plt.subplots(len(heights), 1, figsize=(9, sum(heights)), squeeze=False)
    for axis, (ladder, rungs) in zip(axes[:, 0], panels.items(), strict=False):
        _panel(axis, ladder, [(rung, profiles[rung]) for rung in rungs])
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no ladder rung in this run", ha="center", va="center")
        axes[0, 0].set_axis_off()
    axes[0, 0].set_title(
        f"Where a training step's time goes, rung by rung\n{_subtitle(profiles)}", loc="left"
    )
    save(figure, path)


def _panel(axis: plt.Axes, ladder: str, rungs: list[tuple[str, dict]]) -> None:
    labels = [_label(name, document) for name, document in rungs]
    left = [0.0] * len(rungs)
    colors = sns.color_palette("colorblind", len(SHOWN))
    for part, color in zip(SHOWN, colors, strict=True):
        widths = [_part_ms(document, part) for _, document in rungs]
        axis.barh(labels, widths, left=left, color=color, label=NAMES[part], edgecolor="white")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, total in enumerate(left):
        axis.text(total, y, f" {total:.2f} ms", va="center", fontsize=8)
    axis.invert_yaxis()  # the stock rung on top, as the ladder figure
    axis.set_xlabel("mean training step (ms)")
    axis.set_ylabel(f"{ladder} ladder")
    axis.margins(x=0.15)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def _part_ms(document: dict, part: str) -> float:
    profile = document["profile"]
    return 0.0 if profile is None else max(profile["parts"][part]["s"], 0.0) * 1000


def _label(name: str, document: dict) -> str:
    if document["profile"] is None:
        return f"{name}\n(skipped)"
    return f"{name}\n(ran on CPU)" if document["device"]["fallback"] else name


def _subtitle(profiles: dict[str, dict]) -> str:
    devices = sorted({d["device"]["name"] for d in profiles.values() if d["device"]["name"]})
    steps = sorted({d["steps"] for d in profiles.values()})
    return (
        f"{' or '.join(map(str, steps))} steps after a warm-up, under torch.profiler; "
        f"ran on {', '.join(devices) or 'nothing'}"
    )
