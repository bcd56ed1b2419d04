"""Snakemake adapter: the official archive -> one compact uint8 cache for the training jobs."""

import logging

from cifarbench.archive import read_archive
from cifarbench.cache import save_cache
from cifarbench.job import run


def prepare(*, archive: str, cache: str, train_size: int, test_size: int) -> None:
    data = read_archive(archive, expect_train=train_size, expect_test=test_size)
    save_cache(data, cache)
    logging.info(
        "%s: %d train, %d test images, classes %s",
        cache,
        len(data.train_labels),
        len(data.test_labels),
        ", ".join(data.classes),
    )


run(
    snakemake.log[0],
    prepare,
    archive=snakemake.input.archive,
    cache=snakemake.output.cache,
    # From the config, not params: see workflow/rules/data.smk.
    train_size=snakemake.config["data"]["train_size"],
    test_size=snakemake.config["data"]["test_size"],
)
