"""Snakemake adapter: every variant's JSON -> results/training_data.csv."""

from cifarbench.job import run
from cifarbench.table import build_table, load_results, write_csv


def aggregate(
    *,
    metrics: list[str],
    baselines: dict[str, str],
    settings: dict[str, dict],
    ladders: dict[str, list[str]],
    csv: str,
) -> None:
    write_csv(build_table(load_results(metrics, settings), baselines, ladders), csv)


run(
    snakemake.log[0],
    aggregate,
    metrics=list(snakemake.input.metrics),
    baselines=dict(snakemake.params.baselines),
    settings=dict(snakemake.params.settings),
    ladders=dict(snakemake.params.ladders),
    csv=snakemake.output.csv,
)
