"""Snakemake adapter: profile a variant's training steps (results/profiles/{variant}.json)."""

from cifarbench.atomic import write_json
from cifarbench.cache import load_cache
from cifarbench.job import run
from cifarbench.settings import Settings
from cifarbench.train import run_profile


def profile(
    *,
    cache: str,
    train_size: int,
    test_size: int,
    output: str,
    variant: str,
    settings: dict,
    gpu_fallback: str,
    threads: int,
    warmup_steps: int,
    steps: int,
) -> None:
    data = load_cache(cache, expect=(train_size, test_size))
    document = run_profile(
        variant,
        data,
        Settings.from_dict(settings),
        gpu_fallback=gpu_fallback,
        threads=threads,
        warmup_steps=warmup_steps,
        steps=steps,
    )
    write_json(output, document)


run(
    snakemake.log[0],
    profile,
    cache=snakemake.input.cache,
    train_size=snakemake.params.train_size,
    test_size=snakemake.params.test_size,
    output=snakemake.output.profile,
    variant=snakemake.wildcards.variant,
    settings=dict(snakemake.params.settings),
    gpu_fallback=snakemake.params.gpu_fallback,
    threads=snakemake.threads,
    warmup_steps=snakemake.params.warmup_steps,
    steps=snakemake.params.steps,
)
