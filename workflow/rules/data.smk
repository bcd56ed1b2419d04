# The archive and its cache are named by the archive's md5 (cifarbench.data_source), so another
# data config adds files beside these instead of replacing them. The url and the image counts
# are read from the config by the scripts, not given as params: where the archive came from and
# the counts it was checked against do not change what it is, and a changed param would rerun
# the rule, deleting its output first (and a new cache retrains every variant).


rule download:
    output:
        archive=archive_path(DATA_MD5),
    log:
        "logs/download.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        md5=DATA_MD5,
    script:
        "../scripts/download.py"


rule prepare:
    input:
        archive=rules.download.output.archive,
    output:
        cache=cache_path(DATA_MD5),
    log:
        "logs/prepare.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/prepare.py"
