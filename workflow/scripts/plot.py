"""Snakemake adapter: the JSONs -> the comparison, loss, trade-off and ladder figures."""

from cifarbench import figures, ladder_figure
from cifarbench.script import run
from cifarbench.table import build_table, load_results


def plot(
    metrics: list[str], ladders: dict, comparison: str, loss: str, tradeoff: str, ladder: str
) -> None:
    results = load_results(metrics)
    table = build_table(results)  # the CSV's table, in memory
    figures.comparison(table, comparison)
    figures.loss_curves(results, loss)
    figures.tradeoff(table, tradeoff)
    ladder_figure.ladder(table, results, ladders, ladder)


run(
    snakemake.log[0],
    plot,
    list(snakemake.input.metrics),
    dict(snakemake.params.ladders),
    **dict(snakemake.output.items()),
)
