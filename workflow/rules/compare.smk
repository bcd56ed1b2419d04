# Several machines' results side by side:
#   snakemake compare --config compare='[runs/laptop,runs/a100]'
from cifarbench.result_folders import compare_folders, metrics_files

COMPARE_FOLDERS = compare_folders(config)


rule compare:
    input:
        # A function, so the folders are checked only when `compare` is asked for.
        metrics=lambda wildcards: metrics_files(COMPARE_FOLDERS),
    output:
        csv="results/compare/training_data.csv",
        figure="results/compare/machines.png",
    log:
        "logs/compare/compare.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        folders=COMPARE_FOLDERS,
        order=list(SETTINGS),
        baselines=baselines(config),
    script:
        "../scripts/compare.py"
