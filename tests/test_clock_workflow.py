"""Through the real `snakemake`: per-epoch accuracy and time to target in the JSONs and the CSV,
stop_at, and the step profile target (`snakemake profile`)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cifar_archive import write_cifar_archive
from workflow_helpers import data_workflow, snakemake

pytestmark = pytest.mark.slow

VARIANTS = {
    "cpu": None,
    "cpu-l1-grouped": None,
    # Any accuracy above 1% stops it after epoch 1 (chance is 10%); 100% is not reached.
    "stopper": {"stop_at": 1},
    "never": {"stop_at": 100},
}
CONFIG = ("--configfile", "data.yaml", "extra.yaml", "--config", "epochs=2", "tag=clock")
REPORT = "results/clock"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    archive = write_cifar_archive(tmp_path_factory.mktemp("archive"), 20, 5)
    workdir = data_workflow(tmp_path_factory.mktemp("clock"), *archive)
    extra = {
        "variants": {name: changes for name, changes in VARIANTS.items() if changes},
        "only": list(VARIANTS),
        "targets": [5, 100],
        "profile": {"warmup_steps": 2, "steps": 20},
    }
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    extra["variants"] = {**config["variants"], **extra["variants"]}
    (workdir / "extra.yaml").write_text(yaml.safe_dump(extra))
    done = snakemake(workdir, "--cores", "2", *CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def document(workdir: Path, variant: str) -> dict:
    return json.loads((workdir / "results" / f"{variant}.json").read_text())


def test_every_epoch_is_scored_and_the_last_is_the_accuracy(run):
    replicate = document(run, "cpu")["replicates"][0]
    assert [e["accuracy_pct"] is not None for e in replicate["epochs"]] == [True, True]
    assert replicate["accuracy_pct"] == replicate["epochs"][-1]["accuracy_pct"]
    assert replicate["training_time_s"] == pytest.approx(replicate["epochs"][-1]["clock_s"], 0.05)
    assert replicate["first_epoch_time_s"] == replicate["epochs"][0]["time_s"]
    assert replicate["steady_epoch_time_s"] == replicate["epochs"][1]["time_s"]


def test_the_csv_gives_time_to_each_target_and_where_training_stopped(run):
    rows = pd.read_csv(run / REPORT / "training_data.csv").set_index("Optimization Technique")
    for header in ["First Epoch Time (s)", "Steady Epoch Time (s)", "First Step Excess (s)"]:
        assert rows[header].drop("stopper").notna().all(), header
    assert pd.isna(rows.loc["stopper", "Steady Epoch Time (s)"])  # it trained one epoch
    cpu = rows.loc["cpu"]
    reached = document(run, "cpu")["time_to_target"]["5"]
    assert cpu["Time to 5% (s)"] == pytest.approx(reached["median_s"], abs=0.006)
    assert cpu["Time to 5% Reached"] == "reached 1 of 1"
    assert pd.isna(cpu["Time to 100% (s)"]) and cpu["Time to 100% Reached"] == "reached 0 of 1"
    assert pd.isna(cpu["Stopped at Epoch"])  # no stop_at
    assert str(rows.loc["stopper", "Stopped at Epoch"]) == "1"
    assert rows.loc["never", "Stopped at Epoch"] == "never"


def test_stop_at_ends_training_at_the_first_epoch_that_reaches_it(run):
    stopper = document(run, "stopper")
    assert stopper["replicates"][0]["stopped_at_epoch"] == 1
    assert len(stopper["replicates"][0]["epochs"]) == 1
    never = document(run, "never")["replicates"][0]
    assert never["stopped_at_epoch"] is None and len(never["epochs"]) == 2


def test_the_profile_target_profiles_the_runs_ladder_rungs_and_draws_them(run):
    done = snakemake(run, "profile", "--cores", "2", *CONFIG)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / REPORT / "step_profile.png").stat().st_size > 0
    profiled = sorted(p.stem for p in (run / "results" / "profiles").glob("*.json"))
    assert profiled == ["cpu", "cpu-l1-grouped"]  # the run's ladder rungs, not the others
    profile = json.loads((run / "results" / "profiles" / "cpu.json").read_text())
    assert profile["steps"] == 20 and profile["device"]["used"] == "cpu"
    parts = profile["profile"]["parts"]
    total = sum(part["s"] for part in parts.values())
    assert total == pytest.approx(profile["profile"]["step_s"], rel=0.10)
