rule train:
    input:
        cache=rules.prepare.output.cache,
    output:
        metrics="results/{variant}.json",
    log:
        "logs/train/{variant}.log",
    benchmark:
        "results/benchmarks/{variant}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: train_threads
    resources:
        gpu=gpu_slots,
    params:
        settings=settings_of,
        gpu_fallback=config["gpu_fallback"],
    script:
        "../scripts/train.py"
