"""Sweeps: a base variant crossed with setting values, expanded into ordinary variants that
are validated, selected and run like hand-written ones."""

import copy
import re

import pytest

from cifarbench.config import (
    all_variants,
    baselines,
    heatmap_sweeps,
    selected_variants,
    validate_config,
    variant_settings,
)
from workflow_helpers import CONFIG_SCHEMA, REPO, config_refusal, shipped_config, snakemake

SWEEP = {"base": "g-initial", "axes": {"batch_size": [4, 16], "workers": [0, 8]}}


@pytest.fixture
def config() -> dict:
    config = shipped_config()
    config["sweeps"] = {"grid": copy.deepcopy(SWEEP)}
    return config


def test_a_sweep_expands_into_named_variants_with_their_settings(config):
    validate_config(config, CONFIG_SCHEMA)
    cells = [name for name in all_variants(config) if name.startswith("grid.")]
    assert cells == ["grid.b4-w0", "grid.b4-w8", "grid.b16-w0", "grid.b16-w8"]
    s = variant_settings(config, "grid.b16-w8")
    assert (s["device"], s["batch_size"], s["workers"]) == ("cuda", 16, 8)
    assert (
        variant_settings(config, "grid.b4-w0")["lr"] == variant_settings(config, "g-initial")["lr"]
    )


def test_settings_other_than_the_abbreviated_ones_are_named_in_full(config):
    config["sweeps"] = {"s": {"base": "cpu", "axes": {"loader": ["tensor"], "augment": [True]}}}
    validate_config(config, CONFIG_SCHEMA)
    assert "s.loader-tensor-augment-true" in all_variants(config)


def test_a_sweeps_settings_apply_to_every_cell(config):
    config["sweeps"]["grid"] = {**SWEEP, "settings": {"replicates": 3}}
    assert {
        variant_settings(config, f"grid.b{b}-w{w}")["replicates"] for b in (4, 16) for w in (0, 8)
    } == {3}


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        (
            {"batchsize": [4]},
            "config: sweeps.grid.axes: unknown setting 'batchsize' (did you mean 'batch_size'?)",
        ),
        ({"batch_size": []}, "config: sweeps.grid.axes.batch_size: [] should be non-empty"),
        (
            {"batch_size": [4, 0]},
            "config: sweeps.grid.axes.batch_size: 0 is less than the minimum of 1",
        ),
        (
            {"loader": ["tensor", "dataloader"]},
            "config: sweeps.grid.axes.loader: 'dataloader' is not one of",
        ),
        (
            {"batch_size": [4, 4]},
            "config: sweeps.grid.axes.batch_size: 4 appears twice",
        ),
    ],
)
def test_a_bad_axis_is_refused_naming_the_sweep_and_axis(config, axes, message):
    config["sweeps"]["grid"]["axes"] = axes
    assert config_refusal(config).startswith(message)


def test_a_sweep_on_an_unknown_base_is_refused(config):
    config["sweeps"]["grid"] = {**SWEEP, "base": "g-initail"}
    assert config_refusal(config) == "config: sweeps.grid.base: unknown variant 'g-initail'"


def test_a_cell_the_models_cannot_honour_is_refused_by_name(config):
    config["sweeps"]["grid"] = {"base": "cpu-recipe", "axes": {"batch_norm": [True]}}
    assert config_refusal(config).startswith("config: variants.grid.batch_norm-true: model: resnet")


def test_only_selects_a_sweep_with_its_baseline_and_each_variant_once(config):
    config["sweeps"]["grid"] = {**SWEEP, "baseline": "grid.b4-w8"}
    config["only"] = "cpu,grid,cpu,grid.b16-w0"
    assert selected_variants(config) == [
        "cpu",
        "grid.b4-w8",
        "grid.b4-w0",
        "grid.b16-w0",
        "grid.b16-w8",
    ]
    assert baselines(config)["grid.b16-w0"] == "grid.b4-w8"
    assert baselines(config)["g-b16-w4"] == "g-initial" and baselines(config)["cpu-fast"] == "cpu"
    assert list(heatmap_sweeps(config)) == ["grid"]


def test_the_shipped_example_sweep_is_batch_size_by_workers_on_the_cpu():
    config = shipped_config()
    sweep = config["sweeps"]["batch-workers"]
    assert set(sweep["axes"]) == {"batch_size", "workers"}
    assert variant_settings(config, sweep["baseline"]) == {
        **variant_settings(config, "cpu"),
        **sweep["settings"],
    }
    assert variant_settings(config, "batch-workers.b16-w4")["replicates"] >= 3


def _jobs(output: str, rule: str) -> int:
    """The job count a dry run's table gives a rule."""
    return int(re.search(rf"^{rule}\s+(\d+)$", output, re.M).group(1))


def test_each_seed_is_its_own_training_job():
    """`snakemake -n`: a sweep cell is a target; three seeds are three training jobs and one
    summary."""
    run = snakemake(REPO, "-n", "results/batch-workers.b16-w4.json")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (_jobs(run.stdout, "train"), _jobs(run.stdout, "summarize")) == (3, 1)
    run = snakemake(REPO, "-n", "--config", "only=batch-workers")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (_jobs(run.stdout, "train"), _jobs(run.stdout, "summarize")) == (36, 12)
