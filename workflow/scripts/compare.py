"""Snakemake adapter: several machines' result folders -> results/compare/."""

from cifarbench.compare import compare_table
from cifarbench.compare_figure import machines
from cifarbench.script import run
from cifarbench.table import write_csv


def compare(folders: list[str], order: list[str], csv: str, figure: str) -> None:
    rows = compare_table(folders, order)
    write_csv(rows, csv)
    machines(rows, figure)


run(
    snakemake.log[0],
    compare,
    list(snakemake.params.folders),
    list(snakemake.params.order),
    snakemake.output.csv,
    snakemake.output.figure,
)
