"""Snakemake adapter: fetch the CIFAR-10 archive and check its md5 before it takes its name."""

from cifarbench.download import fetch
from cifarbench.job import run

run(
    snakemake.log[0],
    fetch,
    url=snakemake.params.url,
    dest=snakemake.output.archive,
    md5=snakemake.params.md5,
)
