"""Snakemake adapter: a variant's seed records -> its metrics JSON (the contract)."""

import json
from pathlib import Path

from cifarbench.atomic import write_json
from cifarbench.contract import check_metrics
from cifarbench.document import check_trained_as_asked, combine
from cifarbench.script import run


def summarize(records: list[str], metrics: str, settings: dict) -> None:
    document = combine([json.loads(Path(path).read_text()) for path in records])
    check_trained_as_asked(document, settings, str(Path(records[0]).parent))
    write_json(metrics, check_metrics(document, metrics))


run(
    snakemake.log[0],
    summarize,
    list(snakemake.input.records),
    snakemake.output.metrics,
    dict(snakemake.params.settings),
)
