"""Publish a finished run in docs/results.md: its table and its figures, drawn from the
variants' metrics JSONs by the library calls the workflow's report rules make.

    .venv/bin/python benchmarks/publish_results.py docs/results/study
    .venv/bin/python benchmarks/publish_results.py docs/results/batch-workers
    .venv/bin/python benchmarks/publish_results.py docs/results/cpu-ladder

The folder holds the run's `<variant>.json` files, copied from results/. The table replaces
what docs/results.md holds between `<!-- table: NAME -->` and `<!-- end table: NAME -->`
(NAME: the folder's name); the run's figures, the ones the workflow's plot rule draws
(cifarbench.figures), are written into the folder, each scaled to stay under FIGURE_BYTES so
that docs/ stays small.
"""

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from PIL import Image

from cifarbench import table
from cifarbench.clock import warmup
from cifarbench.columns import (
    ACCURACY,
    ACCURACY_HIGH,
    ACCURACY_LOW,
    ACCURACY_P,
    ACCURACY_VERDICT,
    ACCURACY_VS_BELOW,
    BASELINE,
    DEVICE_USED,
    FALLBACK,
    MACHINE_BUSY,
    MEMORY,
    NOISY,
    REPLICATES,
    RUNG_BELOW,
    SPEEDUP_VS_BASELINE,
    SPEEDUP_VS_BELOW,
    SPEEDUP_VS_BELOW_HIGH,
    SPEEDUP_VS_BELOW_LOW,
    STUDY_ACCURACY,
    STUDY_MEMORY,
    STUDY_TIME,
    TIME,
    TIME_HIGH,
    TIME_LOW,
    TIME_MAX,
    TIME_MEDIAN,
    TIME_MIN,
    TIME_P,
    TIME_P_VS_BELOW,
    TIME_TO_PREFIX,
    TIME_VERDICT,
    TIME_VS_BELOW,
    VARIANT,
)
from cifarbench.config import (
    all_variants,
    baselines,
    heatmap_sweeps,
    ladder_rungs,
    selected_variants,
    validate_config,
)
from cifarbench.document import check_metrics, summary_statistics
from cifarbench.errors import UserError
from cifarbench.figures import draw_figures
from cifarbench.settings import Settings

REPO = Path(__file__).resolve().parents[1]
FIGURE_BYTES = 450_000  # the comparison and the ladder stay under 1 MB together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the run's <variant>.json files")
    parser.add_argument("--page", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    args = parser.parse_args()
    config = run_config(args.config, {p.stem for p in args.folder.glob("*.json")})
    paths = [str(args.folder / f"{name}.json") for name in selected_variants(config)]
    results = [read_published(Path(path), config) for path in paths]
    run_table = table.build_table(results, baselines(config), ladder_rungs(config))
    replace_block(args.page, args.folder.name, markdown_table(run_table))
    written = publish_figures(run_table, results, config, args.folder)
    print(f"wrote the {args.folder.name} table in {args.page}, and {', '.join(written)}")


def run_config(path: Path, variants: set[str]) -> dict:
    """The project's config as a run of just these variants (`only=`, in the config's order),
    checked as Snakemake checks it: baselines, ladders and sweeps are the workflow's own."""
    config = yaml.safe_load(path.read_text())
    known = all_variants(config)
    if not variants:
        sys.exit("no <variant>.json in the folder")
    if unknown := variants - set(known):
        sys.exit(f"variants not in {path}: {', '.join(sorted(unknown))}")
    config["only"] = [name for name in known if name in variants]
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    return config


def read_published(path: Path, config: dict) -> dict:
    """A published metrics file, read and checked as the workflow's aggregate reads it, with
    the upgrade of older schemas in between."""
    try:
        document = check_metrics(upgrade(table.read_metrics(path), config), str(path))
        return table.check_named_by_its_file(document, path)
    except UserError as error:
        sys.exit(str(error))


def upgrade(document: dict, config: dict) -> dict:
    """An older document as the current schema. A schema 2 document (trained before seeds
    became jobs: commit 11ca54f, the study's first rows) as schema 3: version 3 adds each
    replicate's image counts, which prepare checked against the config's data sizes before any
    training; with one seed per job, a job's wall time means the same in both. Then schema 3
    as schema 4 (upgrade_to_4). Schema 5 adds each replicate's machine load, which older runs
    did not record: null, so their Machine Busy is empty, never False. Schema 6 adds settings
    that older runs trained without (upgrade_to_6)."""
    if document["schema_version"] == 2:
        document["schema_version"] = 3
        for replicate in document["replicates"]:
            replicate.setdefault("train_images", config["data"]["train_size"])
            replicate.setdefault("test_images", config["data"]["test_size"])
    if document["schema_version"] == 3:
        upgrade_to_4(document)
    if document["schema_version"] == 4:
        document["schema_version"] = 5
        for replicate in document["replicates"]:
            replicate["machine_load"] = None
    if document["schema_version"] == 5:
        upgrade_to_6(document)
    return document


# The settings schema 6 added, each as every run before it trained (the ResNet's widths were
# 16, 32, 64): their defaults.
SCHEMA_6_SETTINGS = ("width", "whiten", "weight_decay_on", "ema", "tta")


def upgrade_to_6(document: dict) -> None:
    stock = Settings().to_dict()
    added = {key: stock[key] for key in SCHEMA_6_SETTINGS}
    document["settings"] = {**document["settings"], **added}
    document["schema_version"] = 6


def upgrade_to_4(document: dict) -> None:
    """Schema 4 adds the machine's fingerprint, the energy and `data.md5`: what schema 3
    recorded of the machine, the rest (the energy, the archive it was trained on) unknown.
    It also adds per-epoch accuracy: schema 3 runs scored the test set once, after the last
    epoch, as the study did, so as schema 4 they are `evaluate: end` runs, with no time to
    target. Each epoch's clock is the sum of the epochs' times so far (the loop between them,
    a few ms, was not recorded)."""
    document["schema_version"] = 4
    document.setdefault("data", {"md5": None})
    document["environment"]["machine"] = _schema_3_machine(document["environment"])
    document["settings"] = {**document["settings"], "evaluate": "end", "stop_at": None}
    compiled = document["settings"]["compile"]
    unmeasured = "not measured: trained before schema 4 recorded energy"
    for replicate in document["replicates"]:
        replicate["energy"] = dict.fromkeys(["joules", "per_image_mj", "source"]) | {
            "reason": unmeasured
        }
        _epochs_to_4(replicate, document["settings"]["batch_size"])
        replicate.update(warmup(replicate["epochs"], None, compiled))
        replicate.update(stopped_at_epoch=None, time_to_target=None)
    document["summary"] = summary_statistics(document["replicates"])
    document.update(targets=[], time_to_target=None)


def _epochs_to_4(replicate: dict, batch_size: int) -> None:
    clock = 0.0
    for epoch in replicate["epochs"]:
        clock += epoch["time_s"]
        last = epoch is replicate["epochs"][-1]
        epoch.update(
            steps=math.ceil(epoch["images"] / batch_size),
            clock_s=clock,
            accuracy_pct=replicate["accuracy_pct"] if last else None,
            eval_s=None,
        )


def _schema_3_machine(environment: dict) -> dict:
    """The fingerprint's parts that schema 3 recorded (no id: not all its hardware is known)."""
    return {
        "name": environment["host"],
        "id": None,
        "host": environment["host"],
        "cpu": {
            "model": environment["cpu_model"],
            "flags": environment.get("cpu_flags", []),
            "logical_cpus": environment["cpu_count"],
            "affinity_cpus": environment.get("cpu_affinity"),
            "cgroup_quota_cpus": None,
            "usable_cores": None,
            "governor": None,
        },
        "memory_gb": None,
        "os": dict.fromkeys(["name", "kernel", "container", "wsl2"]),
        "python": environment["python"],
        "pytorch": {
            "version": environment["torch"],
            "cuda": environment["cuda"],
            "cudnn": environment["cudnn"],
        },
        "gpus": [],
        "nvidia_driver": dict.fromkeys(["version", "cuda"]),
    }


def markdown_table(run_table: pd.DataFrame) -> str:
    """Our numbers beside the study's; with replicates, the statistics against the baseline,
    or, for a ladder's own run, each rung against the rung below it."""
    with_replicates = (run_table[REPLICATES.header] > 1).any()
    columns = _study_columns()
    if with_replicates:
        is_ladder = run_table[RUNG_BELOW.header].notna().any()
        columns = _ladder_columns() if is_ladder else _statistics_columns()
    columns += _time_to_target_columns(run_table)
    lines = [
        "| " + " | ".join(title for title, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for _, row in run_table.iterrows():
        lines.append("| " + " | ".join(cell(row) for _, cell in columns) + " |")
    return "\n".join(lines) + "\n"


def _study_columns() -> list:
    return [
        ("variant", lambda r: f"`{r[VARIANT.header]}`"),
        ("ran on", _ran_on),
        ("time (s)", _number(TIME)),
        ("accuracy (%)", _number(ACCURACY)),
        ("memory (MB)", _number(MEMORY)),
        ("speedup", _speedup),
        ("the study: time (s)", _number(STUDY_TIME)),
        ("accuracy (%)", _number(STUDY_ACCURACY)),
        ("memory (MB)", _number(STUDY_MEMORY)),
    ]


def _statistics_columns() -> list:
    return [
        ("variant", lambda r: f"`{r[VARIANT.header]}`"),
        ("time (s), 95% CI", _interval(TIME, TIME_LOW, TIME_HIGH)),
        ("accuracy (%), 95% CI", _interval(ACCURACY, ACCURACY_LOW, ACCURACY_HIGH)),
        ("speedup", _speedup),
        ("time vs baseline (p)", _verdict(TIME_VERDICT, TIME_P)),
        ("accuracy vs baseline (p)", _verdict(ACCURACY_VERDICT, ACCURACY_P)),
        ("noisy", lambda r: "yes" if r[NOISY.header] else ""),
    ]


def _time_to_target_columns(run_table: pd.DataFrame) -> list:
    """Each target some replicate reached (schema 4 runs): its median time, or "not
    reached" with how many replicates did. A target no replicate reached would be a column
    of "not reached: 0 of n": the config's `targets` serve runs of every length."""
    targets = [t for t in targets_of_table(run_table) if _reached_by_any(run_table, t)]
    return [(f"time to {t}% (s)", _time_to(t)) for t in targets]


def targets_of_table(run_table: pd.DataFrame) -> list[str]:
    heads = [h for h in run_table.columns if h.startswith(TIME_TO_PREFIX) and h.endswith("(s)")]
    return [h.removeprefix(TIME_TO_PREFIX).removesuffix("% (s)") for h in heads]


def _reached_by_any(run_table: pd.DataFrame, target: str) -> bool:
    """Whether a row's `reached k of n` has k > 0."""
    counts = run_table[f"{TIME_TO_PREFIX}{target}% Reached"].dropna()
    return any(not count.startswith("reached 0 of") for count in counts)


def _time_to(target: str):
    def cell(row: pd.Series) -> str:
        time, reached = (
            row[f"{TIME_TO_PREFIX}{target}% (s)"],
            row[f"{TIME_TO_PREFIX}{target}% Reached"],
        )
        if reached is None or pd.isna(reached):
            return ""
        return (
            f"{time:.1f} ({reached})"
            if time is not None and pd.notna(time)
            else reached.replace("reached", "not reached:", 1)
        )

    return cell


def _ladder_columns() -> list:
    return [
        ("rung", lambda r: f"`{r[VARIANT.header]}`"),
        ("time (s), 95% CI", _interval(TIME, TIME_LOW, TIME_HIGH)),
        ("median [min, max]", _interval(TIME_MEDIAN, TIME_MIN, TIME_MAX)),
        (
            "speedup vs rung below, 95% CI",
            _interval(SPEEDUP_VS_BELOW, SPEEDUP_VS_BELOW_LOW, SPEEDUP_VS_BELOW_HIGH),
        ),
        ("time vs rung below (p)", _verdict(TIME_VS_BELOW, TIME_P_VS_BELOW)),
        ("accuracy (%), 95% CI", _interval(ACCURACY, ACCURACY_LOW, ACCURACY_HIGH)),
        ("accuracy vs rung below", lambda r: r[ACCURACY_VS_BELOW.header] or ""),
        ("busy machine", lambda r: "yes" if r[MACHINE_BUSY.header] is True else ""),
    ]


def _ran_on(row: pd.Series) -> str:
    return "CPU (GPU variant, no CUDA)" if row[FALLBACK.header] else row[DEVICE_USED.header]


def _number(column, digits: int = 2):
    def cell(row: pd.Series) -> str:
        value = row[column.header]
        return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    return cell


def _speedup(row: pd.Series) -> str:
    """Blank where the row's baseline is not in the run."""
    speedup = _number(SPEEDUP_VS_BASELINE)(row)
    return f"{speedup}x vs `{row[BASELINE.header]}`" if speedup else ""


def _interval(mean, low, high):
    """`mean [low, high]`; the mean alone where there is no interval (one replicate), blank
    where there is no mean (a ladder's stock rung has no step)."""

    def cell(row: pd.Series) -> str:
        if not _number(low)(row):
            return _number(mean)(row)
        return f"{_number(mean)(row)} [{_number(low)(row)}, {_number(high)(row)}]"

    return cell


def _verdict(verdict, p_value):
    return lambda r: f"{r[verdict.header]} ({_number(p_value, 3)(r)})" if r[verdict.header] else ""


def replace_block(page: Path, name: str, text: str) -> None:
    begin, end = f"<!-- table: {name} -->", f"<!-- end table: {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    content = page.read_text()
    if not pattern.search(content):
        sys.exit(f"{page}: no '{begin}' ... '{end}' block to put the table in")
    page.write_text(pattern.sub(lambda _: f"{begin}\n{text}{end}", content))


def publish_figures(run_table, results, config, folder: Path) -> list[str]:
    """The run's figures, drawn full size in a scratch folder as the plot rule draws them,
    then each scaled into the folder."""
    ladders = ladder_rungs(config)
    with tempfile.TemporaryDirectory() as scratch:
        names = draw_figures(run_table, results, ladders, heatmap_sweeps(config), scratch)
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shrink(Path(scratch) / name, folder / name)
    return names


def shrink(source: Path, target: Path) -> None:
    """The figure at the largest width (from its own down) that stays under FIGURE_BYTES."""
    with Image.open(source) as image:
        width = image.width
        while True:
            scaled = image.resize((width, round(image.height * width / image.width)))
            scaled.save(target, optimize=True)
            if target.stat().st_size <= FIGURE_BYTES or width < 400:
                return
            width = int(width * 0.8)


if __name__ == "__main__":
    main()
