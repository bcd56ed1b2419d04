"""Snakemake adapter: a variant's seed records -> its metrics JSON (the contract)."""

from pathlib import Path

from cifarbench.atomic import write_json
from cifarbench.document import check_metrics, check_record, check_trained_as_asked, combine
from cifarbench.job import run
from cifarbench.table import read_metrics


def summarize(
    *,
    records: list[str],
    machine: str | None,
    targets: list[float],
    settings: dict,
    metrics: str,
) -> None:
    checked = [check_record(read_metrics(Path(path)), path) for path in records]
    document = combine(checked, machine=machine, targets=targets)
    check_trained_as_asked(document, settings, str(Path(records[0]).parent))
    write_json(metrics, check_metrics(document, metrics))


run(
    snakemake.log[0],
    summarize,
    records=list(snakemake.input.records),
    machine=snakemake.params.machine,
    targets=list(snakemake.params.targets),
    settings=dict(snakemake.params.settings),
    metrics=snakemake.output.metrics,
)
