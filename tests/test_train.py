"""Training: it learns, it is reproducible, it stops on divergence, it never fakes a device."""

import os

import pytest
import torch

from cifarbench import cuda_causes, in_process, train
from cifarbench.config import variant_settings
from cifarbench.document import check_metrics
from cifarbench.errors import UserError
from cifarbench.optimizers import lr_factor
from cifarbench.runtime import resolve_device
from cifarbench.settings import Settings
from workflow_helpers import shipped_config, study_settings

CONFIG = shipped_config()


@pytest.mark.parametrize("loader", ["torchvision", "grouped", "tensor"])
def test_training_learns_a_learnable_task_well_above_chance(learnable, loader):
    s = study_settings(loader=loader, workers=0, batch_size=16, lr=0.01, epochs=4)
    result = train.train_replicate(learnable, Settings(**s), torch.device("cpu"), seed=0)
    assert result["status"] == "ok"
    assert result["accuracy_pct"] >= 60  # chance is 10%
    losses = [epoch["loss"] for epoch in result["epochs"]]
    assert losses[-1] < losses[0]


def test_the_gpu_recipe_runs_on_the_cpu_and_learns(learnable, no_cuda):
    """The config's g-recipe (bf16 autocast, channels_last, flip + translate, one-cycle,
    Nesterov, label smoothing, the ResNet) falls back to the CPU and learns; its batch is cut
    to fit the small test set."""
    # Four epochs: over five seeds three gave 30 to 50%, four 60 to 90%.
    s = {**variant_settings(CONFIG, "g-recipe"), "batch_size": 50, "epochs": 4}
    document = in_process.run_variant("g-recipe", learnable, s, gpu_fallback="cpu", threads=2)
    assert document["device"]["fallback"] and document["status"] == "ok"
    assert document["summary"]["accuracy_pct"]["mean"] > 40  # chance is 10%


def test_one_seed_gives_bit_identical_results_on_the_cpu(learnable):
    s = study_settings(workers=2, batch_size=16, lr=0.01, epochs=2)
    first, second = (
        train.train_replicate(learnable, Settings(**s), torch.device("cpu"), seed=7)
        for _ in range(2)
    )
    assert first["accuracy_pct"] == second["accuracy_pct"]
    assert [e["loss"] for e in first["epochs"]] == [e["loss"] for e in second["epochs"]]
    other = train.train_replicate(learnable, Settings(**s), torch.device("cpu"), seed=8)
    assert [e["loss"] for e in other["epochs"]] != [e["loss"] for e in first["epochs"]]


def test_a_blown_up_learning_rate_stops_training_as_diverged(learnable):
    s = study_settings(workers=0, batch_size=8, lr=1e6, epochs=3, log_every=5)
    result = train.train_replicate(learnable, Settings(**s), torch.device("cpu"), seed=0)
    assert result["status"] == "diverged"
    assert result["accuracy_pct"] is None
    assert result["diverged_at"]["epoch"] == 1
    assert 1 <= result["diverged_at"]["batch"] <= 50


def test_run_variant_writes_a_document_that_meets_the_contract(learnable):
    s = study_settings(workers=0, batch_size=16, epochs=1, replicates=2)
    document = in_process.run_variant("cpu", learnable, s, gpu_fallback="cpu", threads=1)
    check_metrics(document, "run_variant")
    assert document["status"] == "ok" and document["summary"]["n"] == 2
    accuracies = [r["accuracy_pct"] for r in document["replicates"]]
    assert document["summary"]["accuracy_pct"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert [r["seed"] for r in document["replicates"]] == [0, 1]
    assert document["environment"]["torch_threads"] == 1


def test_training_never_uses_more_threads_than_the_job_may_run_on(learnable):
    """`--cores 64` on a smaller machine: each operation would wait for threads not running."""
    cpus = len(os.sched_getaffinity(0))
    document = in_process.run_variant(
        "cpu", learnable, study_settings(workers=0, epochs=1), "cpu", 64
    )
    assert document["environment"]["torch_threads"] == cpus
    assert document["environment"]["threads_requested"] == 64


def test_diverged_variant_says_where(learnable):
    s = study_settings(workers=0, batch_size=8, lr=1e6, epochs=2, log_every=5)
    document = in_process.run_variant("boom", learnable, s, gpu_fallback="cpu", threads=1)
    check_metrics(document, "run_variant")
    assert document["status"] == "diverged"
    assert "epoch 1, batch" in document["reason"]
    assert document["summary"]["accuracy_pct"]["mean"] is None


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_gpu_variant_without_cuda_falls_back_and_says_so(learnable, no_cuda):
    s = study_settings(device="cuda", workers=0, batch_size=16, epochs=1)
    document = in_process.run_variant("g", learnable, s, gpu_fallback="cpu", threads=1)
    assert document["device"] == {
        **document["device"],
        "requested": "cuda",
        "used": "cpu",
        "fallback": True,
    }
    assert "ran on the CPU" in document["reason"]


def test_gpu_variant_without_cuda_is_skipped_when_asked(learnable, no_cuda):
    document = in_process.run_variant(
        "g", learnable, study_settings(device="cuda"), "skip", threads=1
    )
    check_metrics(document, "run_variant")
    assert (document["status"], document["replicates"]) == ("skipped", [])
    assert "skipped" in document["reason"]


def test_gpu_variant_without_cuda_fails_at_once_when_asked(no_cuda, monkeypatch):
    """In one line that names the cause, as `cifarbench doctor` does (tests/test_doctor.py)."""
    monkeypatch.setattr(cuda_causes, "why_no_cuda", lambda: "no NVIDIA GPU on this machine")
    message = r"^no NVIDIA GPU on this machine, and gpu_fallback is 'error': .*cifarbench doctor"
    with pytest.raises(UserError, match=message):
        resolve_device("cuda", "error")


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 0.1), (9, 1.0), (10, 90 / 90), (55, 0.5), (99, 1 / 90)]
)
def test_onecycle_warms_up_then_decays_to_zero(step, expected):
    assert lr_factor(step, 100, "onecycle", warmup=0.1) == pytest.approx(expected)
    assert lr_factor(step, 100, "constant", warmup=0.1) == 1.0


def test_gpu_out_of_memory_names_the_batch_size_and_the_memory(learnable, monkeypatch):
    """Simulated: the failure and the figures a real CUDA device would report."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (512 << 20, 80 << 30))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 79 << 30)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Fake GPU")

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train, "train_replicate", out_of_memory)
    with pytest.raises(UserError) as error:
        in_process.run_variant(
            "g-huge", learnable, study_settings(device="cuda", batch_size=65536), "cpu", 1
        )
    assert str(error.value) == (
        "variant g-huge: out of GPU memory at batch_size 65536 (net, fp32) on Fake GPU: "
        "81920 MB total, 512 MB free, 80896 MB allocated at peak; lower batch_size"
    )
