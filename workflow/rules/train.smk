rule train:
    input:
        cache=rules.prepare.output.cache,
    output:
        metrics="results/{variant}.json",
    params:
        settings=settings_of,
        gpu_fallback=config["gpu_fallback"],
    log:
        "logs/train/{variant}.log",
    benchmark:
        "results/benchmarks/{variant}.tsv"
    threads: train_threads
    resources:
        gpu=gpu_slots,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"
