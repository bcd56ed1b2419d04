"""Snakemake adapter: train one seed of one variant and write its record."""

from cifarbench.archive import load_cache
from cifarbench.atomic import write_json
from cifarbench.script import run
from cifarbench.train import run_seed


def train(
    cache: str,
    record: str,
    variant: str,
    seed: int,
    settings: dict,
    gpu_fallback: str,
    threads: int,
) -> None:
    data = load_cache(cache)
    write_json(record, run_seed(variant, data, settings, gpu_fallback, threads, seed))


run(
    snakemake.log[0],
    train,
    snakemake.input.cache,
    snakemake.output.record,
    snakemake.wildcards.variant,
    int(snakemake.wildcards.seed),
    dict(snakemake.params.settings),
    snakemake.params.gpu_fallback,
    snakemake.threads,
)
