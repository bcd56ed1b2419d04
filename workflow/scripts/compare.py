"""Snakemake adapter: several machines' result folders -> results/compare/."""

from cifarbench.compare import compare_table
from cifarbench.compare_figure import machines
from cifarbench.job import run
from cifarbench.table import write_csv


def compare(
    *, folders: list[str], order: list[str], baselines: dict[str, str], csv: str, figure: str
) -> None:
    rows = compare_table(folders, order, baselines)
    write_csv(rows, csv)
    machines(rows, figure)


run(
    snakemake.log[0],
    compare,
    folders=list(snakemake.params.folders),
    order=list(snakemake.params.order),
    baselines=dict(snakemake.params.baselines),
    csv=snakemake.output.csv,
    figure=snakemake.output.figure,
)
