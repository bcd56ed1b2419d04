"""A variant's training jobs and its summarize job, run in this process one after the other:
its metrics document without Snakemake, for the benchmarks and the tests."""

from cifarbench.cache import Cifar
from cifarbench.document import combine
from cifarbench.settings import Settings
from cifarbench.train import run_seed


def run_variant(
    variant: str,
    data: Cifar,
    settings: dict,
    gpu_fallback: str,
    threads: int,
    targets: list[float] = (),
) -> dict:
    """Every seed of a variant, then its metrics document (see the schema). `settings`: the
    variant's resolved settings, as config.variant_settings gives them; `targets`: the
    accuracies whose time to reach it the document gives."""
    resolved = Settings.from_dict(settings)
    records = [
        run_seed(variant, data, resolved, gpu_fallback=gpu_fallback, threads=threads, seed=seed)
        for seed in resolved.seeds
    ]
    return combine(records, targets=targets)
