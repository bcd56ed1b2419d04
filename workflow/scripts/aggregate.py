"""Snakemake adapter: every variant's JSON -> results/training_data.csv."""

from cifarbench.script import run
from cifarbench.table import build_table, load_results, write_csv


def aggregate(metrics: list[str], baselines: dict, settings: dict, csv: str) -> None:
    write_csv(build_table(load_results(metrics, settings), baselines), csv)


run(
    snakemake.log[0],
    aggregate,
    list(snakemake.input.metrics),
    dict(snakemake.params.baselines),
    dict(snakemake.params.settings),
    snakemake.output.csv,
)
