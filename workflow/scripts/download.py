"""Snakemake adapter: fetch the CIFAR-10 archive and check its md5 before it takes its name."""

from cifarbench.download import fetch
from cifarbench.job import run

run(snakemake.log[0], fetch, snakemake.params.url, snakemake.output.archive, snakemake.params.md5)
