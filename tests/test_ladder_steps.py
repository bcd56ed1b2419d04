"""The ladder step by step: each rung against the rung below it (speedup with its interval,
Welch's p, a verdict, and "same numbers" where a test proves it), robust statistics beside
the means, the busy-machine flag, and a ladder's own run with its own replicates and epochs."""

import copy
import itertools
import logging

import pandas as pd
import pytest
from test_ladder import SAME_AS_BELOW

from cifarbench import config, ladder_figure, table
from cifarbench.settings import computes_the_same
from training_helpers import like
from workflow_helpers import config_refusal, copy_workflow, shipped_config, snakemake

LADDER = {"cpu": ["cpu", "cpu-l1", "cpu-l2", "cpu-l3"]}
STEP = [
    "Rung Below",
    "Speedup vs Rung Below",
    "Speedup vs Rung Below CI95 Low",
    "Speedup vs Rung Below CI95 High",
    "Training Time vs Rung Below",
    "Accuracy vs Rung Below",
]


def rung(template, name: str, changes: dict, times: list[float], accuracies: list[float]):
    document = like(template, name, times, accuracies)
    document["settings"] = {**document["settings"], **changes}
    return document


@pytest.fixture(scope="module")
def ladder_results(template) -> list[dict]:
    grouped = {"loader": "grouped"}
    persistent = {**grouped, "persistent_workers": True}
    results = [
        rung(template, "cpu", {}, [10.0, 10.2, 9.9, 10.1], [50.0, 51.0, 50.5, 50.2]),
        # A clear 2x step that computes the same numbers (the grouped loader).
        rung(template, "cpu-l1", grouped, [5.0, 5.1, 4.9, 5.05], [50.0, 51.0, 50.5, 50.2]),
        # A step within noise, constant itself (persistent workers change the arithmetic).
        rung(template, "cpu-l2", persistent, [5.0, 5.0, 5.0], [50.1, 50.9, 50.6]),
        # Constant on both sides: equal, exactly.
        rung(template, "cpu-l3", {**persistent, "allocator": "keep"}, [5.0, 5.0], [50.1, 50.9]),
    ]
    return results


@pytest.fixture(scope="module")
def ladder_table(ladder_results) -> pd.DataFrame:
    return table.build_table(ladder_results, dict.fromkeys(LADDER["cpu"], "cpu"), LADDER)


@pytest.fixture(scope="module")
def steps(ladder_table) -> pd.DataFrame:
    return ladder_table.set_index("Optimization Technique")


def test_the_ladder_figure_draws_intervals_and_hatches_a_step_within_noise(
    ladder_table, ladder_results, monkeypatch, tmp_path
):
    drawn = []
    monkeypatch.setattr(ladder_figure, "save", lambda figure, path: drawn.append(figure))
    ladder_figure.ladder(ladder_table, ladder_results, LADDER, str(tmp_path / "l.png"))
    axis = drawn[0].axes[0]
    bars = axis.patches
    assert [bar.get_hatch() for bar in bars] == [None, None, "///", "///"]
    assert axis.lines or axis.collections  # the intervals' error bars
    labels = [text.get_text() for text in axis.texts]
    assert "step 2.00x [" in labels[1] and labels[1].endswith(": faster")
    assert labels[2].endswith(": same within noise") and "step" not in labels[0]


def test_a_clear_two_fold_step_is_faster_with_an_interval_around_two(steps):
    below, speedup, low, high, time, accuracy = steps.loc["cpu-l1", STEP]
    assert below == "cpu" and speedup == pytest.approx(10.05 / 5.0125)
    assert 1.85 < low < speedup < high < 2.2
    assert time == "faster"
    assert accuracy == "same numbers (proven)"  # the grouped loader: tests/test_ladder.py


def test_a_step_within_noise_says_so_and_its_interval_holds_one(steps):
    below, _, low, high, time, accuracy = steps.loc["cpu-l2", STEP]
    assert below == "cpu-l1" and low < 1 < high
    assert time == "same within noise"
    assert accuracy in ("same within noise", "lower", "higher")  # tested, not proven equal


def test_constant_replicates_give_a_point_interval(steps):
    assert list(steps.loc["cpu-l3", STEP[1:5]]) == [1.0, 1.0, 1.0, "same within noise"]
    assert steps.loc["cpu-l3", "Accuracy vs Rung Below"] == "same numbers (proven)"  # keep


def test_the_stock_rung_and_rows_outside_a_ladder_have_no_step(steps, template):
    assert steps.loc["cpu", STEP].isna().all()
    alone = table.build_table([like(template, "cpu", [1.0, 1.1], [5.0, 5.0])], {"cpu": "cpu"})
    assert alone[STEP].isna().all().all()


def test_the_rungs_said_to_compute_the_same_numbers_are_those_test_ladder_proves():
    shipped = shipped_config()
    for rungs in shipped["ladders"].values():
        for below, name in itertools.pairwise(rungs):
            settings = [config.variant_settings(shipped, v) for v in (below, name)]
            assert computes_the_same(*settings) == (name in SAME_AS_BELOW), name


def test_robust_statistics_sit_beside_the_mean(steps):
    cpu = steps.loc["cpu"]
    assert cpu["Training Time Median (seconds)"] == pytest.approx(10.05)
    assert (cpu["Training Time Min (seconds)"], cpu["Training Time Max (seconds)"]) == (9.9, 10.2)


def test_a_row_run_on_a_busy_machine_is_flagged_and_named_in_the_log(template, caplog):
    quiet, busy = copy.deepcopy(template), copy.deepcopy(template)
    busy["variant"] = "cpu-busy"
    for document, others in ((quiet, 0.01), (busy, 1.3)):
        for replicate in document["replicates"]:
            replicate["machine_load"] = {**replicate["machine_load"], "other_cpu_cores": others}
            replicate["machine_load"]["busy"] = others > 0.25
    old = copy.deepcopy(template)  # published before schema 5: nothing recorded
    old["variant"] = "cpu-old"
    for replicate in old["replicates"]:
        replicate["machine_load"] = None
    with caplog.at_level(logging.WARNING, logger="cifarbench.table"):
        rows = table.build_table(
            [quiet, busy, old], dict.fromkeys(["cpu", "cpu-busy", "cpu-old"], "cpu")
        )
    flags = rows.set_index("Optimization Technique")["Machine Busy"]
    assert (flags["cpu"], flags["cpu-busy"]) == (False, True) and pd.isna(flags["cpu-old"])
    busy_lines = [r.message for r in caplog.records if "busy machine" in r.message]
    assert len(busy_lines) == 1 and busy_lines[0].startswith("cpu-busy: ")
    assert "1.30 cores" in busy_lines[0]


def test_a_ladders_own_run_trains_its_rungs_with_the_ladders_settings():
    shipped = {**shipped_config(), "only": "cpu-ladder"}
    selected = config.selected_variants(shipped)
    assert selected == [f"cpu-ladder.{name}" for name in shipped["ladders"]["cpu"]]
    for name in selected:
        settings = config.variant_settings(shipped, name)
        assert (settings["replicates"], settings["epochs"]) == (5, 2)
        assert config.baselines(shipped)[name] == "cpu-ladder.cpu"
    assert config.variant_settings(shipped, "cpu-ladder.cpu-fast")["backward"] == "handwritten"
    # The study's rows keep the study's procedure.
    assert config.variant_settings(shipped, "cpu")["epochs"] == 10
    rungs = config.ladder_rungs(shipped)
    assert rungs["cpu"] == selected and rungs["gpu"] == shipped["ladders"]["gpu"]
    assert config.ladder_rungs(shipped_config())["cpu"] == shipped["ladders"]["cpu"]


def test_the_recipe_ladders_own_run_keeps_each_recipes_epochs_and_repeats_its_seeds():
    """A recipe's schedule spans its epochs: cut to the speed-up ladders' 2, it is another
    recipe. `ladder_settings` is per ladder, and the recipe ladder's only repeats."""
    shipped = {**shipped_config(), "only": "recipe-ladder"}
    selected = config.selected_variants(shipped)
    assert selected == [f"recipe-ladder.{name}" for name in shipped["ladders"]["recipe"]]
    for rung, name in zip(shipped["ladders"]["recipe"], selected, strict=True):
        own = config.variant_settings(shipped, rung)
        settings = config.variant_settings(shipped, name)
        assert (settings["epochs"], settings["replicates"]) == (own["epochs"], 3)
        assert settings["epochs"] == 5


def test_ladder_settings_for_a_ladder_that_does_not_exist_are_refused():
    shipped = shipped_config()
    shipped["ladder_settings"] = {**shipped["ladder_settings"], "cpuu": {"replicates": 8}}
    assert config_refusal(shipped) == (
        "config: ladder_settings.cpuu: no ladder named 'cpuu' (ladders: cpu, gpu, recipe)"
    )


def test_a_ladder_whose_own_run_would_name_a_rung_badly_is_refused():
    shipped = shipped_config()
    long_name = "x" * 60
    shipped["ladders"] = {long_name: shipped["ladders"]["cpu"]}
    assert config_refusal(shipped) == (
        f"config: ladders.{long_name}: its own run's rung '{long_name}-ladder.cpu' is not a free "
        "variant name (64 characters at most)"
    )


def test_the_profile_target_of_a_ladders_own_run_profiles_its_rungs(tmp_path):
    """`snakemake profile --config only=cpu-ladder` profiles the rungs as that run trains them
    (cpu-ladder.<rung>), in ladder order, and draws them."""
    workdir = copy_workflow(tmp_path)
    done = snakemake(workdir, "profile", "-n", "--config", "only=cpu-ladder")
    assert done.returncode == 0, done.stderr[-3000:]
    planned = done.stdout
    rungs = shipped_config()["ladders"]["cpu"]
    for rung in rungs:
        assert f"results/profiles/cpu-ladder.{rung}.json" in planned, rung
    assert "results/profiles/cpu.json" not in planned
