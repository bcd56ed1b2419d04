"""The machine's load, recorded around the timed loop: a CPU-bound process beside a tiny
training job is seen and the run flagged busy; the job's own threads and DataLoader workers
are never counted as someone else's."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from cifarbench import load
from cifarbench.loop import train_replicate
from cifarbench.settings import Settings

# Long enough (a few seconds of CPU) for 10 ms ticks to add up; workers: the job's children.
SETTINGS = Settings(epochs=3, workers=2)


def _train(learnable) -> dict:
    torch.set_num_threads(1)  # beside a spinner, two threads would wait on each other
    return train_replicate(learnable, SETTINGS, torch.device("cpu"), seed=0)["machine_load"]


# Started through a parent that exits at once: the spinner is no child of the test's process,
# whose children (the job's DataLoader workers) count as the job's own time.
SPAWN_ORPHAN = (
    "import subprocess, sys; "
    "print(subprocess.Popen([sys.executable, '-c', 'while True: pass'], "
    "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
)


@pytest.fixture
def spinner():
    """A CPU-bound process (another user's job), running for the test's duration."""
    parent = subprocess.run(
        [sys.executable, "-c", SPAWN_ORPHAN], capture_output=True, text=True, check=True
    )
    pid = int(parent.stdout)
    assert pid not in {child.pid for child in psutil.Process().children(recursive=True)}
    time.sleep(0.5)  # started and spinning
    yield pid
    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_cpu_bound_process_beside_the_job_flags_it_busy(learnable, spinner):
    machine = _train(learnable)
    assert machine["other_cpu_cores"] > load.BUSY_CORES
    assert machine["busy"] is True


def _others_while_idle(seconds: float) -> float:
    """Cores other processes used while this test only slept: the machine's own background."""
    start = load.read()
    time.sleep(seconds)
    end = load.read()
    busy = end.machine_busy_s - start.machine_busy_s - (end.own_s - start.own_s)
    return max(busy, 0.0) / (end.wall_s - start.wall_s)


@pytest.mark.slow
def test_without_another_process_the_job_counts_none_of_its_own_work_as_others(learnable):
    """The job's own thread and its two DataLoader workers are its own CPU time: what it
    records as others' is no more than the background measured while idle (on a quiet
    machine: nothing, and the run is not flagged)."""
    background = _others_while_idle(3.0)
    machine = _train(learnable)
    assert machine["own_cpu_cores"] > 0.2  # it did the work, which others' time leaves out
    assert machine["other_cpu_cores"] <= background + 0.15, (background, machine)
    quiet = background + 0.15 < load.BUSY_CORES
    assert machine["busy"] is not True or not quiet, (background, machine)
    assert machine["load_average_start"] >= 0
    assert machine["other_gpu_processes"] is None  # not a CUDA job


def test_busy_means_others_plus_steal_above_the_threshold():
    assert load.is_busy(0.1, 0.0, None) is False
    assert load.is_busy(0.1, load.BUSY_CORES, None) is True  # other guests took the cores
    assert load.is_busy(None, None, 1) is True  # another process on the job's GPU
    assert load.is_busy(None, None, None) is None  # nothing measured: unknown, not quiet
