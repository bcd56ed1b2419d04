"""Snakemake adapter: a variant's seed records -> its metrics JSON (the contract)."""

import json
from pathlib import Path

from cifarbench.atomic import write_json
from cifarbench.document import check_metrics, combine
from cifarbench.job import run


def summarize(*, records: list[str], targets: list[float], metrics: str) -> None:
    document = combine([json.loads(Path(path).read_text()) for path in records], targets)
    write_json(metrics, check_metrics(document, metrics))


run(
    snakemake.log[0],
    summarize,
    records=list(snakemake.input.records),
    targets=list(snakemake.params.targets),
    metrics=snakemake.output.metrics,
)
