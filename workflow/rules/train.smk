rule train:
    input:
        cache=rules.prepare.output.cache,
    output:
        record="results/seeds/{variant}/seed{seed}.json",
    log:
        "logs/train/{variant}/seed{seed}.log",
    benchmark:
        TRAIN_BENCHMARK
    priority: round_priority
    conda:
        "../../envs/torch.yaml"
    threads: train_threads
    resources:
        gpu=gpu_slots,
    params:
        settings=settings_of,
        gpu_fallback=config["gpu_fallback"],
        train_size=config["data"]["train_size"],
        test_size=config["data"]["test_size"],
        # Cleared before training: Snakemake's benchmark writer would follow a link there.
        benchmark=lambda wildcards: TRAIN_BENCHMARK.format(**wildcards),
        data_md5=DATA_MD5,
    script:
        "../scripts/train.py"


# The settings as params too: a result whose settings differ from what the config asks for is
# redone even where its seed records are gone (removed by an interrupted retrain).
rule summarize:
    input:
        records=seed_records,
    output:
        metrics="results/{variant}.json",
    log:
        "logs/summarize/{variant}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        # A name for the machine in the results: renaming it rewrites them, never retrains.
        machine=config.get("machine"),
        targets=config.get("targets", []),
        settings=settings_of,
    script:
        "../scripts/summarize.py"


# A target results/<name>.json for a name that is no variant: one line naming the variants,
# instead of Snakemake's bare "No rule to produce". Never runs: its input function refuses.
rule unknown_variant:
    input:
        no_such_variant,
    output:
        "results/{unknown}.json",
