"""Snakemake adapter: train one seed of one variant and write its record."""

import signal

# Ctrl-C ends a training job at once, by the kernel's default action, not by a Python
# KeyboardInterrupt: the stock DataLoader forks its workers every epoch, and an interrupt that
# lands in one of Python's at-fork hooks (logging's lock release) is printed and swallowed, so
# one Ctrl-C in six here left the job training on. Set before the imports below, which take
# seconds (PyTorch), so that Ctrl-C during them prints no traceback either. Nothing needs
# cleaning up: the job's one output is written atomically after training.
signal.signal(signal.SIGINT, signal.SIG_DFL)

from cifarbench.atomic import clear_the_way, write_json
from cifarbench.cache import load_cache
from cifarbench.job import run
from cifarbench.settings import Settings
from cifarbench.train import run_seed


def train(
    *,
    cache: str,
    train_size: int,
    test_size: int,
    record: str,
    variant: str,
    seed: int,
    settings: dict,
    gpu_fallback: str,
    threads: int,
    benchmark: str,
    data_md5: str,
) -> None:
    clear_the_way(benchmark)  # Snakemake writes it after the job, following any link there
    data = load_cache(cache, expect=(train_size, test_size))
    resolved = Settings.from_dict(settings)
    document = run_seed(
        variant,
        data,
        resolved,
        gpu_fallback=gpu_fallback,
        threads=threads,
        seed=seed,
        data_md5=data_md5,
    )
    write_json(record, document)


run(
    snakemake.log[0],
    train,
    cache=snakemake.input.cache,
    # From the config, not params: see workflow/rules/data.smk.
    train_size=snakemake.config["data"]["train_size"],
    test_size=snakemake.config["data"]["test_size"],
    record=snakemake.output.record,
    variant=snakemake.wildcards.variant,
    seed=int(snakemake.wildcards.seed),
    settings=dict(snakemake.params.settings),
    gpu_fallback=snakemake.params.gpu_fallback,
    threads=snakemake.threads,
    benchmark=snakemake.params.benchmark,
    data_md5=snakemake.params.data_md5,
)
