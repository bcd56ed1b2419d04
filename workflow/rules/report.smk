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
    params:
        baselines=lambda wildcards: {name: BASELINES[name] for name in VARIANTS},
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
        heatmaps=expand("results/sweeps/{sweep}.png", sweep=HEATMAP_SWEEPS),
    log:
        "logs/plot.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        ladders=config.get("ladders", {}),
        heatmap_sweeps=HEATMAP_SWEEPS,
        baselines=lambda wildcards: {name: BASELINES[name] for name in VARIANTS},
    script:
        "../scripts/plot.py"
