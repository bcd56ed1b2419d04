"""The study on a real (single-node) SLURM cluster, through snakemake-executor-plugin-slurm.

tests/slurm/cluster.py starts munged, slurmctld and slurmd as root in a temporary
directory; the workflow then runs with the cluster profile (profiles/slurm) on a
tiny archive, and once more with a wrong md5 to see a failing job fail the run. Without
root or SLURM (`apt-get install slurm-wlm munge`) the test skips; under CI=true it fails.
"""

import csv
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cifar_archive import write_cifar_archive
from slurm import cluster as slurm_cluster
from workflow_helpers import REPO, copy_workflow

PROFILE = "profiles/slurm"
TRAIN_THREADS = yaml.safe_load((REPO / PROFILE / "config.yaml").read_text())["set-threads"]["train"]
VARIANTS = ("cpu", "g-initial")  # one CPU variant, one GPU variant
SEEDS = (0, 1)  # replicates: 2, one SLURM job each
REPORT = "results/study"  # tag: study
RUN_TIMEOUT_S = 300  # hard limit for the three runs together (here they take about 2 min)
# The plugin waits 40 s before its first status check, which suits a real queue; jobs here
# start at once and take seconds.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")
# Columns that must not depend on where a job ran (times, memory and speed may).
SAME_COLUMNS = (
    "Optimization Technique",
    "Epochs",
    "Status",
    "Device Requested",
    "Device Used",
    "Fallback",
    "Model",
    "Batch Size",
    "Workers",
    "Precision",
    "Replicates",
    "Settings Hash",
)
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def _unavailable() -> str | None:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed"
    return slurm_cluster.missing_requirements()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _unavailable()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the SLURM test, but {reason}")
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm-state")
    running = slurm_cluster.start(state)
    try:
        yield running
    finally:
        slurm_cluster.stop(state)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, str]:
    return write_cifar_archive(tmp_path_factory.mktemp("archive"), 20, 5)


def _workdir(base: Path, archive: tuple[Path, str], md5: str | None = None) -> Path:
    """A copy of the workflow with a config overlay for the tiny archive."""
    copy_workflow(base)
    path, real_md5 = archive
    overlay = {
        "data": {
            "url": path.as_uri(),
            "md5": md5 or real_md5,
            "train_size": 200,
            "test_size": 50,
        },
        "only": ",".join(VARIANTS),
        "epochs": 1,
        "replicates": 2,
        "tag": "study",
    }
    (base / "test-config.yaml").write_text(yaml.safe_dump(overlay))
    return base


class Run:
    """One snakemake run in its own process group, started now, waited for later."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--configfile", "test-config.yaml", *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait(self, deadline: float) -> tuple[int, str]:
        """Exit status and output; past `deadline` (time.monotonic) the run is killed."""
        try:
            out, _ = self.proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
            out += f"\n[killed: ran past the {RUN_TIMEOUT_S} s limit]"
        (self.workdir / "snakemake.out").write_text(out)
        return self.proc.returncode, out


@pytest.fixture(scope="module")
def runs(cluster, archive, tmp_path_factory):
    """The study through SLURM, the same study locally, and one with a wrong md5 through
    SLURM, run side by side (a SLURM run mostly waits between status checks)."""
    base = tmp_path_factory.mktemp("runs")
    slurm_args = ("--workflow-profile", PROFILE, *FAST_POLLING)
    cores = str(min(4, os.cpu_count() or 1))  # the threads a SLURM training job can use
    started = {
        "slurm": Run(_workdir(base / "slurm", archive), *slurm_args, env=cluster.env),
        "bad_md5": Run(
            _workdir(base / "bad-md5", archive, md5="0" * 32), *slurm_args, env=cluster.env
        ),
        "local": Run(_workdir(base / "local", archive), "--cores", cores),
    }
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        done = {name: (run.workdir, *run.wait(deadline)) for name, run in started.items()}
    finally:
        for run in started.values():
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
    return done


def _csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {row["Optimization Technique"]: row for row in csv.DictReader(f)}


def _metrics(workdir: Path, variant: str) -> dict:
    return json.loads((workdir / "results" / f"{variant}.json").read_text())


def _submitted(workdir: Path, out: str) -> dict[Path, str]:
    """SLURM job id by log folder (rule_<rule>[/<wildcards>]), from the run's output."""
    root = workdir.resolve() / "logs" / "slurm"
    return {Path(log).relative_to(root).parent: job_id for job_id, log in SUBMITTED.findall(out)}


@pytest.fixture(scope="module")
def slurm_run(runs):
    workdir, rc, out = runs["slurm"]
    assert rc == 0, out[-8000:]
    return workdir, out


@pytest.mark.slurm
def test_every_job_is_its_own_slurm_job_each_seed_too(slurm_run):
    workdir, out = slurm_run
    jobs = _submitted(workdir, out)
    expected = {Path(f"rule_{rule}") for rule in ("download", "prepare", "aggregate", "plot")}
    expected |= {Path("rule_train") / f"{variant}_{seed}" for variant in VARIANTS for seed in SEEDS}
    expected |= {Path("rule_summarize") / variant for variant in VARIANTS}
    assert set(jobs) == expected, out[-8000:]
    assert len(set(jobs.values())) == len(expected)
    for folder, job_id in jobs.items():
        log = workdir / "logs" / "slurm" / folder / f"{job_id}.log"
        assert f"cluster-task: job={job_id} step=batch" in log.read_text()  # written in that job
    assert (workdir / REPORT / "optimization_techniques_comparison.png").stat().st_size > 0


@pytest.mark.slurm
def test_training_jobs_ask_for_cpus_and_gpu_variants_for_a_gpu(cluster, slurm_run):
    workdir, out = slurm_run
    jobs = _submitted(workdir, out)
    cpu_id, gpu_id = jobs[Path("rule_train/cpu_0")], jobs[Path("rule_train/g-initial_0")]
    # Finished jobs stay known to slurmctld for MinJobAge (300 s).
    cpu_job = cluster.run("scontrol", "show", "job", cpu_id)
    gpu_job = cluster.run("scontrol", "show", "job", gpu_id)
    for job in (cpu_job, gpu_job):
        assert f"CPUs/Task={TRAIN_THREADS}" in job  # the profile's set-threads
    assert "TresPerJob" not in cpu_job
    assert "TresPerJob=gres:gpu:1" in gpu_job
    # The TaskProlog of the test cluster printed each job step's CUDA_VISIBLE_DEVICES.
    logs = workdir / "logs" / "slurm" / "rule_train"
    assert (
        f"job={gpu_id} step=0 CUDA_VISIBLE_DEVICES=0\n"
        in (logs / "g-initial_0" / f"{gpu_id}.log").read_text()
    )
    assert (
        f"job={cpu_id} step=0 CUDA_VISIBLE_DEVICES=unset\n"
        in (logs / "cpu_0" / f"{cpu_id}.log").read_text()
    )
    # Behind the dummy GPU there is no CUDA: the variant ran on the CPU and says so (with a
    # real NVIDIA GPU on this machine, it ran there).
    cuda_here = Path("/proc/driver/nvidia").exists()
    device = _metrics(workdir, "g-initial")["device"]
    assert device["requested"] == "cuda"
    assert device["used"] == ("cuda" if cuda_here else "cpu")
    assert device["fallback"] is (not cuda_here)


@pytest.mark.slurm
def test_slurm_results_match_a_local_run(runs, slurm_run):
    slurm_dir, _ = slurm_run
    local_dir, rc, out = runs["local"]
    assert rc == 0, out[-8000:]
    on_slurm = _csv_rows(slurm_dir / REPORT / "training_data.csv")
    local = _csv_rows(local_dir / REPORT / "training_data.csv")
    assert sorted(on_slurm) == sorted(local) == sorted(VARIANTS)
    for variant in VARIANTS:
        for column in SAME_COLUMNS:
            assert on_slurm[variant][column] == local[variant][column], (variant, column)
        # CPU training is deterministic for a given seed and thread count.
        remote, here = _metrics(slurm_dir, variant), _metrics(local_dir, variant)
        if remote["device"]["used"] == "cpu":
            assert remote["environment"]["torch_threads"] == here["environment"]["torch_threads"]
            assert on_slurm[variant]["Accuracy (%)"] == local[variant]["Accuracy (%)"], variant


@pytest.mark.slurm
def test_a_failing_slurm_job_fails_the_run(runs):
    workdir, rc, out = runs["bad_md5"]
    assert rc != 0, out[-8000:]
    failed = re.search(r"SLURM-job '(\d+)' failed, SLURM status is: 'FAILED'", out)
    assert failed, out[-8000:]
    assert "Error in rule download" in out
    # The failed job's SLURM log is kept, and the rule's own log names the cause.
    assert (workdir / "logs" / "slurm" / "rule_download" / f"{failed[1]}.log").exists()
    assert "md5 mismatch" in (workdir / "logs" / "download.log").read_text()
    assert not list((workdir / "resources").glob("*cifar-10-python*"))
    assert not (workdir / REPORT / "training_data.csv").exists()
