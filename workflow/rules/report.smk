rule aggregate:
    input:
        metrics=expand("results/{variant}.json", variant=VARIANTS),
    output:
        csv=report(
            f"{REPORT_DIR}/training_data.csv",
            caption="../report/training_data.rst",
            category="Results",
        ),
    log:
        f"{REPORT_LOGS}/aggregate.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        baselines=BASELINES,
        settings=RUN_SETTINGS,
        ladders=LADDERS,
    script:
        "../scripts/aggregate.py"


rule plot:
    input:
        metrics=expand("results/{variant}.json", variant=VARIANTS),
    output:
        comparison=report(
            f"{REPORT_DIR}/optimization_techniques_comparison.png",
            caption="../report/comparison.rst",
            category="Figures",
        ),
        loss=report(
            f"{REPORT_DIR}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
        ),
        tradeoff=report(
            f"{REPORT_DIR}/accuracy_vs_time.png",
            caption="../report/accuracy_vs_time.rst",
            category="Figures",
        ),
        ladder=report(
            f"{REPORT_DIR}/optimization_ladder.png",
            caption="../report/optimization_ladder.rst",
            category="Figures",
        ),
        curves=report(
            f"{REPORT_DIR}/accuracy_curves.png",
            caption="../report/accuracy_curves.rst",
            category="Figures",
        ),
        heatmaps=expand("{dir}/sweeps/{sweep}.png", dir=REPORT_DIR, sweep=HEATMAP_SWEEPS),
    log:
        f"{REPORT_LOGS}/plot.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        ladders=LADDERS,
        heatmap_sweeps=HEATMAP_SWEEPS,
        baselines=BASELINES,
        # The outputs' folder: cifarbench.figures.draw_figures names the files in it.
        folder=lambda wildcards, output: str(Path(output.comparison).parent),
        settings=RUN_SETTINGS,
    script:
        "../scripts/plot.py"
