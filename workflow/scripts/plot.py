"""Snakemake adapter: the table and the JSONs -> the comparison, loss and trade-off figures."""

import pandas as pd

from cifarbench import figures
from cifarbench.script import run
from cifarbench.table import load_results


def plot(csv: str, metrics: list[str], comparison: str, loss: str, tradeoff: str) -> None:
    table = pd.read_csv(csv)
    figures.comparison(table, comparison)
    figures.loss_curves(load_results(metrics), loss)
    figures.tradeoff(table, tradeoff)


run(
    snakemake.log[0],
    plot,
    snakemake.input.csv,
    list(snakemake.input.metrics),
    snakemake.output.comparison,
    snakemake.output.loss,
    snakemake.output.tradeoff,
)
