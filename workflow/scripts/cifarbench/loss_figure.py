"""Training loss per epoch, every variant on one plot (loss_curves.png)."""

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from cifarbench.figure_style import save


def loss_curves(results: list[dict], path: str, subtitle: str = "") -> None:
    """Mean training loss per epoch for every variant on one plot (first replicate).

    A fallback variant is dashed; a diverged one ends in an x; skipped ones are listed."""
    sns.set_theme(style="whitegrid", context="paper")
    figure, axis = plt.subplots(figsize=(8, 5))
    skipped = []
    for result in results:
        if not result["replicates"]:
            skipped.append(result["variant"])
            continue
        epochs = result["replicates"][0]["epochs"]
        label = result["variant"] + (" (ran on CPU)" if result["device"]["fallback"] else "")
        style = "--" if result["device"]["fallback"] else "-"
        if result["status"] == "diverged":
            label += " (diverged)"
        (line,) = axis.plot(
            [e["epoch"] for e in epochs],
            [e["loss"] for e in epochs],
            style,
            marker="o",
            label=label,
        )
        if result["status"] == "diverged":
            last = epochs[-1] if epochs else {"epoch": 0, "loss": float("nan")}
            axis.plot([last["epoch"]], [last["loss"]], "x", color=line.get_color(), ms=12)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    last_epoch = max((r["epochs"] for r in results if r["replicates"]), default=1)
    axis.set_xlim(0.5, last_epoch + 0.5)  # one epoch is one point per variant, not a line
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean training loss")
    title = "Training loss per epoch" + (f"\n{subtitle}" if subtitle else "")
    if skipped:
        title += f"\nskipped: {', '.join(skipped)}"
    axis.set_title(title)
    axis.legend(fontsize=7, ncol=2)
    save(figure, path)
