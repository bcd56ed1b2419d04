rule train:
    input:
        cache=rules.prepare.output.cache,
    output:
        record="results/seeds/{variant}/seed{seed}.json",
    log:
        "logs/train/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/{variant}/seed{seed}.tsv"
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
    script:
        "../scripts/summarize.py"
