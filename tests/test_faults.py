"""Faults through the real `snakemake` command: hostile or broken archives never reach
training, and a killed training job leaves no result and is redone on the next run."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cifar_archive import hostile_pickle, write_cifar_archive
from workflow_helpers import REPO, SNAKEMAKE, data_workflow, snakemake

pytestmark = pytest.mark.slow


def assert_nothing_prepared_or_trained(workdir: Path) -> None:
    assert not list((workdir / "resources").glob("cifar10*.npz"))
    assert not list((workdir / "results").glob("*.json"))
    leftovers = [p.name for p in (workdir / "resources").glob(".*.tmp")]
    assert leftovers == []


def test_hostile_pickle_with_a_matching_md5_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    archive, md5 = write_cifar_archive(
        tmp_path / "a", 20, 5, corrupt={"payload": {"data_batch_2": hostile_pickle(marker)}}
    )
    workdir = data_workflow(tmp_path, archive, md5)
    run = snakemake(workdir, "--cores", "2", "--configfile", "data.yaml", "--config", "only=cpu")
    assert run.returncode != 0
    assert "data_batch_2: refusing to unpickle io.open (not part of a CIFAR-10 batch)" in (
        run.stderr
    )
    assert not marker.exists()
    assert_nothing_prepared_or_trained(workdir)


def test_truncated_archive_fails_in_prepare_with_one_line(tmp_path):
    archive, md5 = write_cifar_archive(tmp_path / "a", 20, 5, corrupt={"truncate": 0.6})
    workdir = data_workflow(tmp_path, archive, md5)
    run = snakemake(workdir, "--cores", "2", "--configfile", "data.yaml", "--config", "only=cpu")
    assert run.returncode != 0
    cause = [line for line in run.stderr.splitlines() if line.startswith("cifarbench error:")]
    assert len(cause) == 1 and f"cifar-10-python-{md5}.tar.gz" in cause[0], run.stderr[-2000:]
    assert_nothing_prepared_or_trained(workdir)


def test_wrong_test_set_size_is_an_error_naming_the_counts(tmp_path):
    archive, md5 = write_cifar_archive(tmp_path / "a", 20, 5)
    workdir = data_workflow(tmp_path, archive, md5, test=10000)
    run = snakemake(workdir, "--cores", "2", "--configfile", "data.yaml", "--config", "only=cpu")
    assert run.returncode != 0
    assert "expected 10000" in run.stderr and "50" in run.stderr
    assert_nothing_prepared_or_trained(workdir)


def _training_process(snakemake_process: psutil.Process, timeout: float = 120) -> psutil.Process:
    """The Python process running workflow/scripts/train.py under this snakemake."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in snakemake_process.children(recursive=True):
            try:
                if any("train.py" in part for part in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("the training job never started")


def _wait_for(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never said {text!r}")


def _catches_sigint(process: psutil.Process) -> bool:
    """Whether the process runs a Python handler for SIGINT (bit 2 of its caught-signals
    mask), rather than the kernel's default action."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)
    return bool(caught >> (signal.SIGINT - 1) & 1)


@pytest.mark.parametrize("how", ["SIGKILL the training job", "SIGINT the run (Ctrl-C)"])
def test_an_interrupted_training_job_leaves_no_result_and_is_redone(tmp_path, how):
    archive, md5 = write_cifar_archive(tmp_path / "a", 20, 5)
    workdir = data_workflow(tmp_path, archive, md5)
    args = [
        SNAKEMAKE,
        "--cores",
        "2",
        "--configfile",
        "data.yaml",
        "--config",
        "only=cpu",
        "epochs=200",
    ]
    run = subprocess.Popen(
        args,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        trainer = _training_process(psutil.Process(run.pid))
        _wait_for(workdir / "logs" / "train" / "cpu" / "seed0.log", "epoch 1:")
        if how.startswith("SIGKILL"):
            trainer.send_signal(signal.SIGKILL)
        else:
            # A Python KeyboardInterrupt can be swallowed (in an at-fork hook as the DataLoader
            # forks its workers), so the job must die by the kernel's default action instead.
            assert not _catches_sigint(trainer)
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C, once
        assert run.wait(timeout=120) != 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert not (workdir / "results" / "cpu.json").exists()
    assert not list((workdir / "results").glob(".cpu.json.*"))
    assert not list((workdir / "results" / "seeds" / "cpu").glob("*seed0.json*"))
    rerun = snakemake(
        workdir, "--cores", "2", "--configfile", "data.yaml", "--config", "only=cpu", "epochs=1"
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (workdir / "results" / "cpu.json").exists()


def test_a_link_planted_at_a_benchmark_path_is_not_written_through(tmp_path):
    """Snakemake writes each training job's benchmark itself, following links: the job removes
    a link planted there first, and the file it points to is left as it was."""
    archive, md5 = write_cifar_archive(tmp_path / "a", 20, 5)
    workdir = data_workflow(tmp_path, archive, md5)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    benchmark = workdir / "results" / "benchmarks" / "cpu" / "seed0.tsv"
    benchmark.parent.mkdir(parents=True)
    benchmark.symlink_to(victim)
    target = "results/seeds/cpu/seed0.json"
    run = snakemake(
        workdir, target, "--cores", "2", "--configfile", "data.yaml", "--config", "epochs=1"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert victim.read_text() == "precious\n"
    assert not benchmark.is_symlink() and benchmark.read_text().startswith("s\th:m:s")


def _interrupt_during_epoch_two(workdir: Path, args: list[str]) -> None:
    """Run snakemake with `args`, and press Ctrl-C once the training job is in its second
    epoch."""
    run = subprocess.Popen(
        [SNAKEMAKE, *args],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _training_process(psutil.Process(run.pid))
        _wait_for(workdir / "logs" / "train" / "cpu" / "seed0.log", "epoch 1/2:")
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=120) != 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_a_stopped_retrain_never_leaves_the_old_result_standing(tmp_path):
    """epochs=1, then epochs=2 stopped by Ctrl-C: the old result is still there, but the next
    run retrains it, and a table never shows it under the new settings."""
    archive, md5 = write_cifar_archive(tmp_path / "a", 20, 5)
    workdir = data_workflow(tmp_path, archive, md5)
    args = ["--cores", "2", "--configfile", "data.yaml", "--config", "only=cpu"]
    first = snakemake(workdir, *args, "epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    _interrupt_during_epoch_two(workdir, [*args, "epochs=2"])
    result = workdir / "results" / "cpu.json"
    assert json.loads(result.read_text())["epochs"] == 1
    # Where Snakemake lost what it ran with (its .snakemake/ deleted, results copied from
    # elsewhere), nothing reruns the old result: the table refuses it, in one line.
    forgetful = shutil.copytree(workdir, tmp_path / "forgetful", symlinks=True)
    shutil.rmtree(forgetful / ".snakemake")
    table = snakemake(forgetful, *args, "epochs=2", "tag=after")
    assert table.returncode != 0
    assert (
        "cifarbench error: results/cpu.json: trained with epochs: 1, the config asks for "
        "epochs: 2; to retrain it, remove results/cpu.json and results/seeds/cpu/, and run again"
    ) in table.stderr
    assert not (forgetful / "results" / "after" / "training_data.csv").exists()
    planned = snakemake(workdir, "-n", *args, "epochs=2")
    assert "rule train:" in planned.stdout, planned.stdout[-2000:]
    rerun = snakemake(workdir, *args, "epochs=2")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads(result.read_text())["epochs"] == 2
    csv = (workdir / "results" / "partial" / "cpu" / "training_data.csv").read_text()
    assert csv.splitlines()[1].split(",")[4] == "2"  # the Epochs column


def test_ctrl_c_while_the_training_job_imports_pytorch_prints_no_traceback():
    """The training script sets Ctrl-C's action before its imports, which take seconds."""
    script = REPO / "workflow" / "scripts" / "train.py"
    job = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    try:
        maps = Path(f"/proc/{job.pid}/maps")
        deadline = time.monotonic() + 60
        while "libtorch" not in maps.read_text():  # PyTorch's import is under way
            assert time.monotonic() < deadline and job.poll() is None
            time.sleep(0.01)
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == -signal.SIGINT
    assert stderr == ""
