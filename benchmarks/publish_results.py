"""Turn a finished study run into docs/results.md's table and figures.

    .venv/bin/python benchmarks/publish_results.py --results results --docs docs

Reads results/training_data.csv and the figures beside it; writes docs/results_table.md (our
numbers beside the study's, one row per variant) and the comparison and ladder figures as
PNGs scaled to fit 1 MB together, for docs/results.md to include and discuss.
"""

import argparse
from pathlib import Path

import pandas as pd
from PIL import Image

from cifarbench.study import STUDY_RESULTS

FIGURES = ("optimization_techniques_comparison.png", "optimization_ladder.png")
MAX_FIGURE_BYTES = 480_000  # two under 1 MB together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    table = pd.read_csv(args.results / "training_data.csv")
    (args.docs / "results_table.md").write_text(markdown_table(table))
    for name in FIGURES:
        shrink(args.results / name, args.docs / name)
    print(f"wrote {args.docs / 'results_table.md'} and {', '.join(FIGURES)}")


def markdown_table(table: pd.DataFrame) -> str:
    lines = [
        "| variant | ran on | time (s) | accuracy (%) | memory (MB) | speedup vs baseline "
        "| the study: time (s) | accuracy (%) | memory (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        study = STUDY_RESULTS.get(row["Optimization Technique"], (None, None, None))
        ran_on = "CPU (GPU variant, no CUDA)" if row["Fallback"] else row["Device Used"]
        cells = [
            f"`{row['Optimization Technique']}`",
            ran_on,
            _number(row["Training Time (seconds)"]),
            _number(row["Accuracy (%)"]),
            _number(row["Memory Usage (MB)"]),
            f"{_number(row['Speedup vs Baseline'])}x vs `{row['Baseline']}`",
            *(_number(value) for value in study),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}"


def shrink(source: Path, target: Path) -> None:
    """The figure at the largest width (from its own down) that stays under the budget."""
    with Image.open(source) as image:
        width = image.width
        while True:
            scaled = image.resize((width, round(image.height * width / image.width)))
            scaled.save(target, optimize=True)
            if target.stat().st_size <= MAX_FIGURE_BYTES or width < 400:
                return
            width = int(width * 0.8)


if __name__ == "__main__":
    main()
