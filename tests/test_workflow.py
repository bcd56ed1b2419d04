"""The real entry points: `snakemake` on a tiny archive in the official layout, end to end."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cifar_archive import write_cifar_archive
from workflow_helpers import FIGURES, copy_workflow, data_workflow, snakemake

pytestmark = pytest.mark.slow

# g-* fall back to the CPU on a machine without CUDA; cpu-l1-grouped is a rung of the cpu ladder;
# `tiny` is a two-axis sweep (its cells are variants too).
SWEEP = {"base": "cpu", "axes": {"batch_size": [10, 20], "workers": [0, 1]}}
CELLS = ["tiny.b10-w0", "tiny.b10-w1", "tiny.b20-w0", "tiny.b20-w1"]
VARIANTS = ["cpu", "cpu-l1-grouped", "g-b16-w4", "g-bn", *CELLS]
REPORT = "results/study"  # the run's tag=study: where its CSV and figures go
OUTPUTS = [f"{REPORT}/{name}" for name in ["training_data.csv", *FIGURES, "sweeps/tiny.png"]]
# The study run's config; every later command on it repeats it, or Snakemake would see
# changed params and want to rerun.
STUDY_CONFIG = (
    "--configfile",
    "data.yaml",
    "sweep.yaml",
    "--config",
    "epochs=1",
    "replicates=2",
    f"only={','.join(VARIANTS[:4])},tiny",
    "tag=study",
    "machine=lab",
)
STUDY_HEADER = (
    "Optimization Technique,Training Time (seconds),Accuracy (%),Memory Usage (MB),Epochs"
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, str]:
    return write_cifar_archive(tmp_path_factory.mktemp("archive"), 20, 5)


@pytest.fixture(scope="module")
def study(tmp_path_factory, archive) -> Path:
    """The whole DAG: four variants and a 2x2 sweep, two replicates, one epoch, two cores."""
    workdir = data_workflow(tmp_path_factory.mktemp("study"), *archive)
    (workdir / "sweep.yaml").write_text(yaml.safe_dump({"sweeps": {"tiny": SWEEP}}))
    run = snakemake(
        workdir,
        "--cores",
        "2",
        *STUDY_CONFIG,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir


def load(workdir: Path, variant: str) -> dict:
    return json.loads((workdir / "results" / f"{variant}.json").read_text())


def test_every_output_appears(study):
    for output in OUTPUTS:
        assert (study / output).stat().st_size > 0, output
    # The plot rule declares exactly the figures cifarbench.figures draws: none undeclared.
    report = study / REPORT
    drawn = sorted(str(path.relative_to(report)) for path in report.rglob("*.png"))
    assert drawn == sorted([*FIGURES, "sweeps/tiny.png"])
    assert sorted(p.name for p in (study / "results").glob("*.json")) == sorted(
        f"{v}.json" for v in VARIANTS
    )
    for variant in VARIANTS:
        for seed in (0, 1):  # replicates=2: a job each
            assert (study / "logs" / "train" / variant / f"seed{seed}.log").exists()
            assert (study / "results" / "benchmarks" / variant / f"seed{seed}.tsv").exists()
            assert (study / "results" / "seeds" / variant / f"seed{seed}.json").exists()


def test_csv_has_the_study_header_and_agrees_with_the_jsons(study):
    csv = study / REPORT / "training_data.csv"
    assert csv.read_text().splitlines()[0].startswith(STUDY_HEADER)
    rows = pd.read_csv(csv).set_index("Optimization Technique")
    assert list(rows.index) == VARIANTS
    # The clock's columns, and each of the shipped config's targets (50, 60, 75, 80).
    for header in [
        "First Epoch Time (s)",
        "Steady Epoch Time (s)",
        "First Step Excess (s)",
        "Stopped at Epoch",
        *(f"Time to {t}% {end}" for t in (50, 60, 75, 80) for end in ("(s)", "Reached")),
    ]:
        assert header in rows.columns, header
    assert set(rows["Time to 50% Reached"]) <= {
        "reached 0 of 2",
        "reached 1 of 2",
        "reached 2 of 2",
    }
    for variant in VARIANTS:
        summary = load(study, variant)["summary"]
        row = rows.loc[variant]
        assert row["Training Time (seconds)"] == pytest.approx(
            summary["training_time_s"]["mean"], abs=0.006
        )
        assert row["Accuracy (%)"] == pytest.approx(summary["accuracy_pct"]["mean"], abs=0.006)
        assert row["Accuracy Std (%)"] == pytest.approx(summary["accuracy_pct"]["std"], abs=0.006)
        assert row["Memory Usage (MB)"] == pytest.approx(summary["memory_mb"]["mean"], abs=0.006)
        assert (row["Epochs"], row["Replicates"]) == (1, 2)
        low, high = (
            row["Training Time CI95 Low (seconds)"],
            row["Training Time CI95 High (seconds)"],
        )
        assert low <= row["Training Time (seconds)"] <= high
        assert row["Noisy"] in (True, False)
    baselines = rows["Baseline"].to_dict()
    assert baselines["tiny.b20-w1"] == "cpu" and baselines["g-bn"] == "g-initial"
    verdicts = {"faster", "slower", "same within noise"}
    assert rows.loc["cpu-l1-grouped", "Training Time vs Baseline"] in verdicts
    assert 0 <= rows.loc["tiny.b20-w1", "Training Time p vs Baseline"] <= 1
    # Robust statistics, the machine's load, and the ladder's step from cpu to cpu-l1-grouped.
    low, median, high = (rows[f"Training Time {s} (seconds)"] for s in ("Min", "Median", "Max"))
    assert ((low <= median) & (median <= high)).all()
    assert set(rows["Machine Busy"]) <= {True, False} and (rows["Other CPU (cores)"] >= 0).all()
    step = rows.loc["cpu-l1-grouped"]
    assert step["Rung Below"] == "cpu" and step["Training Time vs Rung Below"] in verdicts
    # Two replicates on a loaded machine may leave Fieller's interval unbounded (empty).
    low, high = step["Speedup vs Rung Below CI95 Low"], step["Speedup vs Rung Below CI95 High"]
    assert pd.isna(low) == pd.isna(high)
    assert pd.isna(low) or low <= step["Speedup vs Rung Below"] <= high
    assert step["Accuracy vs Rung Below"] == "same numbers (proven)"
    assert rows.drop(index="cpu-l1-grouped")["Rung Below"].isna().all()


def test_gpu_variant_on_a_machine_without_cuda_is_labelled_as_run_on_the_cpu(study):
    document = load(study, "g-b16-w4")
    assert document["device"]["requested"] == "cuda"
    assert document["device"]["used"] == "cpu" and document["device"]["fallback"]
    assert document["settings"]["batch_size"] == 16 and document["settings"]["workers"] == 4
    row = (
        pd.read_csv(study / REPORT / "training_data.csv")
        .set_index("Optimization Technique")
        .loc["g-b16-w4"]
    )
    assert (row["Device Used"], bool(row["Fallback"])) == ("cpu", True)


def test_every_result_names_its_machine_and_its_energy_or_why_not(study):
    rows = pd.read_csv(study / REPORT / "training_data.csv").set_index("Optimization Technique")
    for variant in VARIANTS:
        document, row = load(study, variant), rows.loc[variant]
        machine = document["environment"]["machine"]
        assert machine["name"] == row["Machine"] == "lab"  # --config machine=lab
        assert row["Machine ID"] == machine["id"] and machine["cpu"]["usable_cores"] >= 1
        energies = [replicate["energy"] for replicate in document["replicates"]]
        measured = [energy["joules"] for energy in energies if energy["joules"] is not None]
        if measured:
            assert row["Energy (J)"] == pytest.approx(sum(measured) / len(measured), abs=0.006)
        else:  # no counter here: an empty cell and the reason, never 0
            assert pd.isna(row["Energy (J)"]) and pd.isna(row["Energy per Image (mJ)"])
            assert all(energy["reason"] for energy in energies)


def test_cpu_training_jobs_never_overlap_in_time(study):
    """Each seed's job claims every core (--cores 2), so Snakemake runs them in turn."""
    records = [json.loads(p.read_text()) for p in (study / "results" / "seeds").glob("*/*.json")]
    assert len(records) == 2 * len(VARIANTS)
    spans = sorted((record["job"]["start"], record["job"]["end"]) for record in records)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start
    assert all(record["environment"]["threads_requested"] == 2 for record in records)


def test_replicates_run_in_interleaved_rounds(study):
    """Seed 0 of every variant trains before seed 1 of any (the train rule's priorities), so
    the machine's drift is spread over every variant instead of landing on one."""
    records = [json.loads(p.read_text()) for p in (study / "results" / "seeds").glob("*/*.json")]
    starts = {seed: [r["job"]["start"] for r in records if r["seed"] == seed] for seed in (0, 1)}
    assert len(starts[0]) == len(starts[1]) == len(VARIANTS)
    assert max(starts[0]) < min(starts[1])


def test_a_ladders_own_run_trains_its_rungs_with_the_ladders_settings(archive, tmp_path):
    """`only=cpu-ladder`: every rung as cpu-ladder.<rung>, 5 seeds each (a dry run)."""
    workdir = data_workflow(tmp_path, *archive)
    run = snakemake(workdir, "-n", "--configfile", "data.yaml", "--config", "only=cpu-ladder")
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.M))
    rungs = len(yaml.safe_load((workdir / "config.yaml").read_text())["ladders"]["cpu"])
    assert (int(jobs["train"]), int(jobs["summarize"])) == (5 * rungs, rungs)
    assert "results/partial/cpu-ladder/training_data.csv" in run.stdout


def test_a_complete_workflow_has_nothing_to_do_quickly(study):
    start = time.perf_counter()
    run = snakemake(
        study,
        "--cores",
        "2",
        *STUDY_CONFIG,
    )
    elapsed = time.perf_counter() - start
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr
    print(f"no-op snakemake took {elapsed:.2f} s")


def test_report_is_a_self_contained_html_with_the_figures(study):
    run = snakemake(
        study,
        *STUDY_CONFIG,
        "--report",
        f"{REPORT}/report.html",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    html = (study / REPORT / "report.html").read_text()
    for name in (
        "optimization_techniques_comparison.png",
        "loss_curves.png",
        "accuracy_vs_time.png",
        "optimization_ladder.png",
        "training_data.csv",
    ):
        assert name in html


def test_dag_renders_with_dot(study):
    """`snakemake --dag | dot -Tpng > dag.png`, as the README says (dot: Debian's graphviz)."""
    run = snakemake(study, "--configfile", "data.yaml", "--dag")
    assert run.returncode == 0
    assert run.stdout.lstrip().startswith("digraph") and "train" in run.stdout
    dot = shutil.which("dot")
    if dot is None and os.environ.get("CI") != "true":
        pytest.skip("graphviz's dot is not installed (apt-get install graphviz)")
    png = subprocess.run(
        [dot or "dot", "-Tpng"], input=run.stdout.encode(), capture_output=True, check=True
    ).stdout
    assert png.startswith(b"\x89PNG")


def test_one_variant_by_name_runs_only_what_it_needs(tmp_path, archive):
    workdir = data_workflow(tmp_path, *archive)
    run = snakemake(
        workdir, "results/g-b16-w4.json", "--configfile", "data.yaml", "--config", "epochs=1"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert [p.name for p in (workdir / "results").glob("*.json")] == ["g-b16-w4.json"]
    # Each epoch's line reaches the console Snakemake runs in, terminal or not.
    assert re.search(r"g-b16-w4 seed 0: epoch 1/1: loss [\d.]+, .* images/s, ETA", run.stderr)
    assert not list((workdir / "results").rglob("training_data.csv"))
    for rule in ("download", "prepare", "train"):
        assert f"rule {rule}:" in run.stderr
    assert "rule aggregate:" not in run.stderr


@pytest.mark.parametrize(
    ("config", "report"),
    [
        ((), "results/training_data.csv"),
        (("only=cpu,g-b16-w4",), "results/partial/cpu+g-b16-w4/training_data.csv"),
        (("only=batch-workers",), "results/partial/batch-workers/training_data.csv"),
        (("only=cpu", "tag=quick"), "results/quick/training_data.csv"),
    ],
)
def test_a_partial_run_never_writes_over_the_whole_studys_report(config, report, tmp_path):
    # In a copy: the checkout's own results/ and config.local.yaml are not the test's.
    run = snakemake(copy_workflow(tmp_path), "-n", *(("--config", *config) if config else ()))
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(rf"^\s+output: {re.escape(report)}$", run.stdout, re.M), run.stdout[-3000:]


def test_the_snakefile_finds_the_library_without_the_editable_install(tmp_path, archive):
    """As under a Snakemake installed apart from the project: the library is not importable
    until common.smk puts it on the path."""
    workdir = data_workflow(tmp_path, *archive)
    without_install = (
        "import sys; sys.path = [p for p in sys.path if not p.endswith('workflow/scripts')]; "
        "import importlib.util; assert importlib.util.find_spec('cifarbench') is None; "
        "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", without_install, "-n", "--configfile", "data.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "train" in run.stdout


def test_a_wrong_md5_fails_cleanly_and_leaves_nothing(tmp_path, archive):
    workdir = data_workflow(tmp_path, archive[0], "0" * 32)
    run = snakemake(
        workdir, "--cores", "2", "--configfile", "data.yaml", "--config", "epochs=1", "only=cpu"
    )
    assert run.returncode != 0
    assert "md5 mismatch" in run.stderr
    assert "expected 00000000000000000000000000000000" in run.stderr
    resources = workdir / "resources"
    assert not resources.exists() or not any(resources.iterdir())
    assert not list((workdir / "results").glob("*.json"))


def test_a_config_typo_is_rejected_before_any_job(tmp_path, archive):
    workdir = data_workflow(tmp_path, *archive)
    (workdir / "typo.yaml").write_text("variants:\n  cpu:\n    batchsize: 8\n")
    run = snakemake(workdir, "--cores", "2", "--configfile", "data.yaml", "typo.yaml")
    assert run.returncode != 0
    assert "config: variants.cpu: unknown key 'batchsize' (did you mean 'batch_size'?)" in (
        run.stderr
    )
    assert not (workdir / "resources").exists()
