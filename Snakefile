# cifarbench: which training optimizations make a small PyTorch CNN on CIFAR-10 faster or
# better, on this hardware? One job per variant; see README.md and config.yaml.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# This machine's own settings (an offline data source, say), git-ignored, read after
# config.yaml when present; --configfile and --config override both.
if Path("config.local.yaml").exists():

    configfile: "config.local.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/compare.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        rules.aggregate.output,
        rules.plot.output,
