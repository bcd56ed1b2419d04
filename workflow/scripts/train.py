"""Snakemake adapter: train one seed of one variant and write its record."""

import signal

# Ctrl-C ends a training job at once, by the kernel's default action, not by a Python
# KeyboardInterrupt: the stock DataLoader forks its workers every epoch, and an interrupt that
# lands in one of Python's at-fork hooks (logging's lock release) is printed and swallowed, so
# one Ctrl-C in six here left the job training on. Set before the imports below, which take
# seconds (PyTorch), so that Ctrl-C during them prints no traceback either. Nothing needs
# cleaning up: the job's one output is written atomically after training.
signal.signal(signal.SIGINT, signal.SIG_DFL)

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
    data_md5: str,
) -> None:
    data = load_cache(cache, expect=tuple(sizes))
    record_of_seed = run_seed(variant, data, settings, gpu_fallback, threads, seed, data_md5)
    write_json(record, record_of_seed)


run(
    snakemake.log[0],
    train,
    snakemake.input.cache,
    # From the config, not params: see workflow/rules/data.smk.
    [snakemake.config["data"]["train_size"], snakemake.config["data"]["test_size"]],
    snakemake.output.record,
    snakemake.wildcards.variant,
    int(snakemake.wildcards.seed),
    dict(snakemake.params.settings),
    snakemake.params.gpu_fallback,
    snakemake.threads,
    snakemake.params.data_md5,
)
