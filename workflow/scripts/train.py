"""Snakemake adapter: train one seed of one variant and write its record."""

import signal

from cifarbench.atomic import clear_the_way, write_json
from cifarbench.cache import load_cache
from cifarbench.config import TRAIN_BENCHMARK
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
    clear_the_way(TRAIN_BENCHMARK.format(variant=variant, seed=seed))  # Snakemake writes it
    data = load_cache(cache, expect=tuple(sizes))
    write_json(record, run_seed(variant, data, settings, gpu_fallback, threads, seed))


# Ctrl-C ends a training job at once, by the kernel's default action, not by a Python
# KeyboardInterrupt: the stock DataLoader forks its workers every epoch, and an interrupt that
# lands in one of Python's at-fork hooks (logging's lock release) is printed and swallowed, so
# one Ctrl-C in six here left the job training on. Nothing needs cleaning up: the job's one
# output is written atomically after training.
signal.signal(signal.SIGINT, signal.SIG_DFL)

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
