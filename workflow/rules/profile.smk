# Where a step's time goes: `snakemake results/profiles/{variant}.json` for one variant,
# `snakemake profile` for the selected run's ladder rungs and their figure. Not in `all`.
# The rungs of the run's ladders as it trains them (a ladder's own run's, `only=cpu-ladder`,
# or the study's variants), each once, in ladder order.
PROFILED_RUNGS = list(
    dict.fromkeys(rung for rungs in LADDERS.values() for rung in rungs if rung in VARIANTS)
)


rule profile_variant:
    input:
        cache=rules.prepare.output.cache,
    output:
        profile="results/profiles/{variant}.json",
    log:
        "logs/profile/{variant}.log",
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
        warmup_steps=config["profile"]["warmup_steps"],
        steps=config["profile"]["steps"],
    script:
        "../scripts/profile_variant.py"


rule profile:
    input:
        profiles=expand("results/profiles/{variant}.json", variant=PROFILED_RUNGS),
    output:
        figure=report(
            f"{REPORT_DIR}/step_profile.png",
            caption="../report/step_profile.rst",
            category="Figures",
        ),
    log:
        f"{REPORT_LOGS}/profile.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        ladders=LADDERS,
    script:
        "../scripts/plot_profile.py"
