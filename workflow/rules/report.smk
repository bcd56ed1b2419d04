rule aggregate:
    input:
        metrics=expand("results/{variant}.json", variant=VARIANTS),
    output:
        csv=report(
            "results/training_data.csv",
            caption="../report/training_data.rst",
            category="Results",
        ),
    log:
        "logs/aggregate.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/aggregate.py"


rule plot:
    input:
        metrics=expand("results/{variant}.json", variant=VARIANTS),
    output:
        comparison=report(
            "results/optimization_techniques_comparison.png",
            caption="../report/comparison.rst",
            category="Figures",
        ),
        loss=report(
            "results/loss_curves.png", caption="../report/loss_curves.rst", category="Figures"
        ),
        tradeoff=report(
            "results/accuracy_vs_time.png",
            caption="../report/accuracy_vs_time.rst",
            category="Figures",
        ),
        ladder=report(
            "results/optimization_ladder.png",
            caption="../report/optimization_ladder.rst",
            category="Figures",
        ),
    log:
        "logs/plot.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        ladders=config.get("ladders", {}),
    script:
        "../scripts/plot.py"
