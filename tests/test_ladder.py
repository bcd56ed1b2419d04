"""The study's rows run stock PyTorch: `cpu` trains exactly as the study's own script, and a
ladder rung that only changes how the same arithmetic is carried out trains exactly as the
rung below it."""

import json
import subprocess
import sys

import pytest

from cifarbench.cache import save_cache
from cifarbench.config import variant_settings
from cifarbench.in_process import run_variant
from cifarbench.settings import Settings
from training_helpers import assert_same_training, train_two_epochs
from workflow_helpers import REPO, config_refusal, shipped_config

CONFIG = shipped_config()
BENCHMARK = REPO / "benchmarks" / "reference_vs_workflow.py"

# Rungs that compute exactly what the rung below computes, on any machine, and why. The other
# rungs change the arithmetic: persistent workers draw one RNG number less per epoch (another
# order from epoch 2), oneDNN and the fused optimizer use other kernels, cuDNN autotuning
# picks other algorithms.
SAME_AS_BELOW = {
    "cpu-l1-grouped": "the same batches and pixels, carried from the workers in groups",
    "cpu-l4-keep": "only where freed memory goes",
    "cpu-l6-tensor": "the same batches, drawn from the same RNG numbers, without workers",
    "cpu-fast": "autograd's own operators, called by hand",
    "g-l2-pinned": "the same bytes, copied from pinned memory",
    "g-l3-grouped": "the same batches and pixels, carried from the workers in groups",
    "g-l6-deferred": "the same losses, read later",
    "g-fast": "the same batches, drawn from the same RNG numbers, without workers",
}


def rung_below(rung: str) -> str:
    for rungs in CONFIG["ladders"].values():
        if rung in rungs[1:]:
            return rungs[rungs.index(rung) - 1]
    raise KeyError(rung)


def test_cpu_variant_trains_exactly_as_the_studys_script(learnable, tmp_path):
    """Same seed, same threads: the same loss every epoch and the same accuracy, to the bit."""
    cache = tmp_path / "cifar10.npz"
    save_cache(learnable, cache)
    script = [sys.executable, str(REPO / "benchmarks" / "study_script.py"), "--cache", str(cache)]
    done = subprocess.run(
        [*script, "--epochs", "2", "--threads", "2"], capture_output=True, text=True, check=True
    )
    study = json.loads(done.stdout.strip().splitlines()[-1])
    settings = {**variant_settings(CONFIG, "cpu"), "epochs": 2}
    document = run_variant("cpu", learnable, settings, gpu_fallback="cpu", threads=2)
    replicate = document["replicates"][0]
    assert [epoch["loss"] for epoch in replicate["epochs"]] == study["epoch_losses"]
    assert replicate["accuracy_pct"] == study["accuracy_pct"]
    assert document["environment"]["torch_threads"] == study["threads"]


def test_the_side_by_side_benchmark_runs_the_script_and_changed_variants(learnable, tmp_path):
    """benchmarks/reference_vs_workflow.py, as a user runs it: `cpu` reproduces the script's
    losses there too, and `variant/key=value` runs the variant with that one change."""
    cache = tmp_path / "cifar10.npz"
    save_cache(learnable, cache)
    out = tmp_path / "side.json"
    arms = "study,cpu,cpu/workers=0,cpu/lr=0.01"
    options = ["--cache", cache, "--epochs", "1", "--arms", arms, "--json", out]
    done = subprocess.run([sys.executable, BENCHMARK, *options], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    losses = {r["arm"]: r["epoch_losses"] for r in json.loads(out.read_text())["results"]}
    assert list(losses) == arms.split(",")
    # Workers never change the numbers; the learning rate does.
    assert losses["cpu"] == losses["study"] == losses["cpu/workers=0"] != losses["cpu/lr=0.01"]


@pytest.mark.parametrize(
    ("arm", "cause"),
    [("cpu/wrokers=0", "unknown setting 'wrokers'"), ("cpuu", "no variant 'cpuu' in config.yaml")],
)
def test_a_typo_in_an_arm_stops_the_benchmark_before_any_arm_runs(arm, cause, tmp_path):
    options = ["--cache", tmp_path / "none.npz", "--arms", f"study,{arm}"]
    done = subprocess.run([sys.executable, BENCHMARK, *options], capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"{arm}: {cause}"]


@pytest.mark.parametrize("rung", SAME_AS_BELOW)
def test_rung_trains_exactly_as_the_rung_below(learnable, rung):
    changes = {"epochs": 2, "lr": 0.01}
    below = {**variant_settings(CONFIG, rung_below(rung)), **changes}
    assert_same_training(
        train_two_epochs(learnable, below),
        train_two_epochs(learnable, {**variant_settings(CONFIG, rung), **changes}),
    )


def test_every_ladder_climbs_from_stock_to_its_fast_variant():
    stock = Settings().to_dict()
    ladders = CONFIG["ladders"]
    assert ladders["cpu"][0] == "cpu" and ladders["cpu"][-1] == "cpu-fast"
    assert ladders["gpu"][0] == "g-initial" and ladders["gpu"][-1] == "g-fast"
    assert variant_settings(CONFIG, "cpu") == stock
    assert variant_settings(CONFIG, "g-initial") == {**stock, "device": "cuda"}


def test_a_rung_that_changes_two_settings_is_refused():
    config = shipped_config()
    config["variants"]["cpu-l3-fused"]["allocator"] = "keep"
    assert config_refusal(config) == (
        "config: ladders.cpu: cpu-l3-fused must change one setting from cpu-l2-persistent; "
        "it changes 2: fused_optimizer, allocator"
    )


def test_a_ladder_naming_an_unknown_variant_is_refused():
    config = shipped_config()
    config["ladders"]["cpu"].append("cpu-l9-warp")
    assert config_refusal(config) == "config: ladders.cpu: unknown variant cpu-l9-warp"
