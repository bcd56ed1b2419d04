"""Snakemake adapter: the JSONs -> the comparison, loss, trade-off, ladder and sweep figures."""

from cifarbench import figures, ladder_figure, sweep_figure, tradeoff_figure
from cifarbench.script import run
from cifarbench.table import build_table, load_results


def plot(
    metrics: list[str],
    ladders: dict,
    heatmap_sweeps: dict,
    baselines: dict,
    settings: dict,
    out: dict,
) -> None:
    results = load_results(metrics, settings)
    table = build_table(results, baselines)  # the CSV's table, in memory
    figures.comparison(table, out["comparison"])
    subtitle = figures.run_subtitle(table)
    figures.loss_curves(results, out["loss"], subtitle)
    tradeoff_figure.tradeoff(table, out["tradeoff"])
    ladder_figure.ladder(table, results, ladders, out["ladder"])
    for (sweep, cells), path in zip(heatmap_sweeps.items(), out["heatmaps"], strict=True):
        sweep_figure.heatmaps(sweep, cells, results, path, subtitle)


run(
    snakemake.log[0],
    plot,
    list(snakemake.input.metrics),
    dict(snakemake.params.ladders),
    dict(snakemake.params.heatmap_sweeps),
    dict(snakemake.params.baselines),
    dict(snakemake.params.settings),
    {
        "comparison": snakemake.output.comparison,
        "loss": snakemake.output.loss,
        "tradeoff": snakemake.output.tradeoff,
        "ladder": snakemake.output.ladder,
        "heatmaps": list(snakemake.output.heatmaps),
    },
)
