"""Snakemake adapter: a variant's seed records -> its metrics JSON (the contract)."""

from pathlib import Path

from cifarbench.atomic import write_json
from cifarbench.contract import check_metrics, check_record
from cifarbench.document import combine
from cifarbench.script import run
from cifarbench.table import read_metrics


def summarize(records: list[str], metrics: str) -> None:
    document = combine([check_record(read_metrics(Path(path)), path) for path in records])
    write_json(metrics, check_metrics(document, metrics))


run(snakemake.log[0], summarize, list(snakemake.input.records), snakemake.output.metrics)
