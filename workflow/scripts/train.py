"""Snakemake adapter: train one variant (every replicate) and write its metrics JSON."""

from cifarbench.archive import load_cache
from cifarbench.atomic import write_json
from cifarbench.script import run
from cifarbench.train import run_variant


def train(
    cache: str, metrics: str, variant: str, settings: dict, gpu_fallback: str, threads: int
) -> None:
    write_json(metrics, run_variant(variant, load_cache(cache), settings, gpu_fallback, threads))


run(
    snakemake.log[0],
    train,
    snakemake.input.cache,
    snakemake.output.metrics,
    snakemake.wildcards.variant,
    dict(snakemake.params.settings),
    snakemake.params.gpu_fallback,
    snakemake.threads,
)
