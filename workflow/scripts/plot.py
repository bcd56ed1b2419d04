"""Snakemake adapter: the JSONs -> the run's figures (cifarbench.figures lists them)."""

from cifarbench.figures import draw_figures
from cifarbench.job import run
from cifarbench.table import build_table, load_results


def plot(
    *,
    metrics: list[str],
    baselines: dict[str, str],
    settings: dict[str, dict],
    ladders: dict[str, list[str]],
    heatmap_sweeps: dict[str, dict[str, dict]],
    folder: str,
) -> None:
    results = load_results(metrics, settings)
    table = build_table(results, baselines, ladders)  # the CSV's table, in memory
    draw_figures(table, results, ladders, heatmap_sweeps, folder)


run(
    snakemake.log[0],
    plot,
    metrics=list(snakemake.input.metrics),
    baselines=dict(snakemake.params.baselines),
    settings=dict(snakemake.params.settings),
    ladders=dict(snakemake.params.ladders),
    heatmap_sweeps=dict(snakemake.params.heatmap_sweeps),
    folder=snakemake.params.folder,
)
