"""Snakemake adapter: fetch the CIFAR-10 archive and check its md5 before it takes its name."""

from cifarbench.download import fetch
from cifarbench.job import run

# The url from the config, not a param: see workflow/rules/data.smk.
run(
    snakemake.log[0],
    fetch,
    url=snakemake.config["data"]["url"],
    dest=snakemake.output.archive,
    md5=snakemake.params.md5,
)
