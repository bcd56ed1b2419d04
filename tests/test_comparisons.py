"""Comparisons a reviewer would accept: confidence intervals, Welch's t-test against each row's
baseline, a verdict, a noise flag, the study's own numbers, the sweep heatmaps."""

import logging

import pandas as pd
import pytest

from cifarbench import sweep_figure, table
from training_helpers import like

COLUMNS = ["Training Time vs Baseline", "Accuracy vs Baseline", "Noisy"]


def against_cpu(results: list[dict]) -> pd.DataFrame:
    """The table of `results`, every row compared with `cpu`."""
    return table.build_table(results, {result["variant"]: "cpu" for result in results})


@pytest.fixture(scope="module")
def rows(template) -> pd.DataFrame:
    results = [
        like(template, "cpu", [10.0, 10.2, 9.9], [50.0, 51.0, 50.5]),
        like(template, "cpu-slow", [15.0, 15.3, 14.8], [50.2, 50.8, 50.4]),
        like(template, "cpu-better", [10.1, 9.8, 10.2], [60.0, 61.0, 60.5]),
        like(template, "cpu-noisy", [6.0, 24.4, 12.0], [50.0, 51.0, 50.5]),
        like(template, "cpu-once", [8.0], [50.0]),
    ]
    return against_cpu(results).set_index("Optimization Technique")


def test_rows_compared_with_their_baseline_get_a_verdict(rows):
    assert list(rows.loc["cpu-slow", COLUMNS]) == ["slower", "same within noise", False]
    assert list(rows.loc["cpu-better", COLUMNS]) == ["same within noise", "higher", False]
    assert rows.loc["cpu-slow", "Training Time p vs Baseline"] < 0.05
    assert rows.loc["cpu-better", "Training Time p vs Baseline"] >= 0.05
    assert pd.isna(rows.loc["cpu-once", "Training Time vs Baseline"])  # one replicate: no test


def test_intervals_contain_the_mean_and_need_two_replicates(rows):
    low, high = rows.loc[
        "cpu", ["Training Time CI95 Low (seconds)", "Training Time CI95 High (seconds)"]
    ]
    assert low < rows.loc["cpu", "Training Time (seconds)"] < high
    assert pd.isna(rows.loc["cpu-once", "Accuracy CI95 Low (%)"])


def test_a_noisy_row_is_flagged_in_the_table_and_the_log(template, caplog):
    with caplog.at_level(logging.WARNING, logger="cifarbench.table"):
        rows = against_cpu([like(template, "cpu-noisy", [6.0, 24.4], [50.0, 51.0])])
    assert bool(rows.loc[0, "Noisy"])
    assert "cpu-noisy: its replicates' training times vary by more than 10%" in caplog.text


@pytest.mark.parametrize(
    ("busy", "cause"),
    [
        (True, "other work ran beside it (Machine Busy)"),
        (False, "nothing else used the machine meanwhile (Machine Busy is False)"),
        (None, "other load on the machine? (its load was not recorded)"),
    ],
)
def test_a_noisy_rows_warning_names_what_the_load_meter_saw(template, caplog, busy, cause):
    """Noise with the load meter quiet is the machine's own speed, not another process."""
    noisy = like(template, "cpu-noisy", [6.0, 24.4], [50.0, 51.0])
    for replicate in noisy["replicates"]:  # None: recorded before schema 5
        load = replicate["machine_load"]
        replicate["machine_load"] = None if busy is None else {**load, "busy": busy}
    with caplog.at_level(logging.WARNING, logger="cifarbench.table"):
        against_cpu([noisy])
    [warning] = [r.getMessage() for r in caplog.records if "vary by more than" in r.getMessage()]
    assert cause in warning


def test_the_studys_own_numbers_sit_beside_ours(template):
    results = [like(template, name, [10.0], [50.0]) for name in ("cpu", "g-bn", "cpu-fast")]
    rows = against_cpu(results).set_index("Optimization Technique")
    assert rows.loc["cpu", "Study Training Time (seconds)"] == 293.87
    assert rows.loc["cpu", "Study Accuracy (%)"] == 62.07
    assert rows.loc["g-bn", "Study Accuracy (%)"] == 51.08
    assert pd.isna(rows.loc["g-bn", "Study Training Time (seconds)"])
    assert pd.isna(rows.loc["cpu-fast", "Study Accuracy (%)"])


def test_a_sweep_heatmap_outlines_the_cells_as_good_as_the_best(template, tmp_path):
    cells = {f"s.b{b}-w{w}": {"batch_size": b, "workers": w} for b in (4, 16) for w in (0, 2)}
    times = {
        "s.b4-w0": [20.0, 20.5, 19.8],
        "s.b4-w2": [12.0, 12.2, 11.9],
        "s.b16-w0": [6.0, 6.1, 5.9],
        "s.b16-w2": [6.05, 5.95, 6.1],
    }
    results = [like(template, name, t, [50.0, 51.0, 50.5]) for name, t in times.items()]
    path = tmp_path / "s.png"
    sweep_figure.heatmaps("s", cells, results, str(path))
    assert path.stat().st_size > 10_000
    values = {name: t for name, t in times.items()}
    grid = sweep_figure._grid(cells, values, "batch_size", "workers")
    assert grid.loc[16, 2] == pytest.approx(6.033, abs=0.001)
    marked = sweep_figure._as_good_as_best(cells, values, grid, True, "batch_size", "workers")
    assert sorted(marked) == [(1, 0), (1, 1)]  # batch 16 with 0 or 2 workers: no difference


def test_a_constant_cell_worse_than_the_best_is_not_outlined():
    """Cells that compute the same numbers repeat them exactly: two constant cells that differ
    are different, not "the same within noise"."""
    cells = {f"s.b{b}": {"batch_size": b, "workers": 0} for b in (4, 16)}
    accuracies = {"s.b4": [50.0, 50.0], "s.b16": [60.0, 60.0]}
    grid = sweep_figure._grid(cells, accuracies, "batch_size", "workers")
    marked = sweep_figure._as_good_as_best(cells, accuracies, grid, False, "batch_size", "workers")
    assert marked == [(1, 0)]  # batch 16 alone: the best
