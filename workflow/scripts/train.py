"""Snakemake adapter: train one seed of one variant and write its record."""

from cifarbench.atomic import write_json
from cifarbench.cache import load_cache
from cifarbench.script import run
from cifarbench.train import run_seed


def train(
    cache: str,
    sizes: list[int],
    record: str,
    variant: str,
    seed: int,
    settings: dict,
    gpu_fallback: str,
    threads: int,
) -> None:
    data = load_cache(cache, expect=tuple(sizes))
    write_json(record, run_seed(variant, data, settings, gpu_fallback, threads, seed))


run(
    snakemake.log[0],
    train,
    snakemake.input.cache,
    list(snakemake.params.sizes),
    snakemake.output.record,
    snakemake.wildcards.variant,
    int(snakemake.wildcards.seed),
    dict(snakemake.params.settings),
    snakemake.params.gpu_fallback,
    snakemake.threads,
)
