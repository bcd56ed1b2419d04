rule train:
    input:
        cache=rules.prepare.output.cache,
    output:
        record="results/seeds/{variant}/seed{seed}.json",
    log:
        "logs/train/{variant}/seed{seed}.log",
    benchmark:
        TRAIN_BENCHMARK
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
    script:
        "../scripts/train.py"


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
    script:
        "../scripts/summarize.py"
