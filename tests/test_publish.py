"""benchmarks/publish_results.py: the published runs (docs/results/<run>/) render into a page's
table block and figures, older metrics included, and a page without the block is refused."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from publish_results import FIGURE_BYTES, _interval, _time_to_target_columns, upgrade

from cifarbench.columns import TIME, TIME_HIGH, TIME_LOW
from cifarbench.config import variant_settings
from cifarbench.document import summary_statistics
from cifarbench.settings import settings_hash
from workflow_helpers import FIGURES, shipped_config

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "publish_results.py"
PUBLISHED = sorted(p for p in (REPO / "docs" / "results").iterdir() if p.is_dir())


def publish(folder: Path, page: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "--page", str(page)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("run", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_a_published_run_renders_its_table_and_figures(run, tmp_path):
    folder = tmp_path / run.name
    folder.mkdir()
    for document in run.glob("*.json"):
        shutil.copy(document, folder)
    page = tmp_path / "results.md"
    page.write_text(f"before\n<!-- table: {run.name} -->\nold\n<!-- end table: {run.name} -->\n")
    done = publish(folder, page)
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert text.startswith("before\n") and "old" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    documents = [json.loads(p.read_text()) for p in run.glob("*.json")]
    assert len(rows) == len(documents)
    for document in documents:
        row = next(r for r in rows if r.startswith(f"| `{document['variant']}` |"))
        assert f"{document['summary']['training_time_s']['mean']:.2f}" in row
        assert f"{document['summary']['accuracy_pct']['mean']:.2f}" in row
    figures = sorted(str(f.relative_to(folder)) for f in folder.rglob("*.png"))
    assert figures == sorted([*FIGURES, *(f"sweeps/{sweep}.png" for sweep in _sweeps(run))])
    assert all((folder / f).stat().st_size <= FIGURE_BYTES for f in figures)


def _sweeps(run: Path) -> list[str]:
    """The two-axis sweeps with a cell in the published run: each has its heatmap."""
    variants = [document.stem for document in run.glob("*.json")]
    return [
        sweep
        for sweep, spec in shipped_config()["sweeps"].items()
        if len(spec["axes"]) == 2 and any(v.startswith(f"{sweep}.") for v in variants)
    ]


def test_a_page_without_the_runs_block_is_refused(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(next((REPO / "docs" / "results" / "study").glob("*.json")), folder)
    page = tmp_path / "results.md"
    page.write_text("no block here\n")
    done = publish(folder, page)
    assert done.returncode != 0
    assert "<!-- table: study -->" in done.stderr
    assert page.read_text() == "no block here\n"


def test_a_metrics_file_named_for_another_variant_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(REPO / "docs" / "results" / "study" / "cpu-fast.json", folder / "cpu.json")
    page = tmp_path / "results.md"
    page.write_text("<!-- table: study -->\n<!-- end table: study -->\n")
    done = publish(folder, page)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"{folder / 'cpu.json'}: holds variant 'cpu-fast', not 'cpu'"
    ]


def test_a_published_table_gives_time_to_each_target_or_says_not_reached():
    run_table = pd.DataFrame(
        {
            "Time to 50% (s)": [12.345, None, None],
            "Time to 50% Reached": ["reached 2 of 2", "reached 1 of 2", None],
        }
    )
    [(title, cell)] = _time_to_target_columns(run_table)
    assert title == "time to 50% (s)"
    cells = [cell(row) for _, row in run_table.iterrows()]
    assert cells == ["12.3 (reached 2 of 2)", "not reached: 1 of 2", ""]


def test_an_interval_cell_is_the_mean_alone_without_an_interval_and_blank_without_a_mean():
    run_table = pd.DataFrame(
        {
            "Training Time (seconds)": [10.0, 12.0, None],
            "Training Time CI95 Low (seconds)": [9.0, None, None],
            "Training Time CI95 High (seconds)": [11.0, None, None],
        }
    )
    cell = _interval(TIME, TIME_LOW, TIME_HIGH)
    assert [cell(row) for _, row in run_table.iterrows()] == ["10.00 [9.00, 11.00]", "12.00", ""]


def test_a_target_no_replicate_reached_gets_no_column():
    """A 2-epoch run against the config's 80% target: no column of "not reached: 0 of n"."""
    run_table = pd.DataFrame(
        {
            "Time to 50% (s)": [None, None],
            "Time to 50% Reached": ["reached 1 of 3", "reached 0 of 3"],
            "Time to 80% (s)": [None, None],
            "Time to 80% Reached": ["reached 0 of 3", "reached 0 of 3"],
        }
    )
    assert [title for title, _ in _time_to_target_columns(run_table)] == ["time to 50% (s)"]


def test_a_ladders_own_run_publishes_each_step_against_the_rung_below(tmp_path):
    """A `only=cpu-ladder` run's files (here: a published sweep cell's three replicates, as
    each rung, each rung 10% faster than the one below): its table gives each rung's time with
    its interval, the step over the rung below with its interval and verdict."""
    config = shipped_config()
    published = REPO / "docs/results/batch-workers/batch-workers.b16-w0.json"
    cell = upgrade(json.loads(published.read_text()), config)  # as the current schema
    folder = tmp_path / "cpu-ladder"
    folder.mkdir()
    for index, rung in enumerate(config["ladders"]["cpu"]):
        document = json.loads(json.dumps(cell))
        document["variant"] = name = f"cpu-ladder.{rung}"
        document["settings"] = variant_settings(config, name)
        document["settings_hash"] = settings_hash(document["settings"])
        for replicate in document["replicates"]:
            replicate["training_time_s"] /= 1.1**index
        document["summary"] = summary_statistics(document["replicates"])
        (folder / f"{name}.json").write_text(json.dumps(document))
    page = tmp_path / "results.md"
    page.write_text("<!-- table: cpu-ladder -->\n<!-- end table: cpu-ladder -->\n")
    done = publish(folder, page)
    assert done.returncode == 0, done.stderr
    lines = page.read_text().splitlines()
    assert lines[1].startswith("| rung | time (s), 95% CI | median [min, max] | speedup vs rung")
    first, second = lines[3], lines[4]
    assert first.startswith("| `cpu-ladder.cpu` |") and "vs rung below" not in first
    assert second.startswith("| `cpu-ladder.cpu-l1-grouped` |") and "| 1.10 [" in second
    assert "same numbers (proven)" in second  # the grouped loader
    assert (folder / "optimization_ladder.png").exists()
