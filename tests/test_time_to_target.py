"""Time to target and warm-up, read from constructed per-epoch logs: reached at epoch k, never
reached, reached by some replicates only; and how the table writes each."""

import math

import pytest

from cifarbench.accuracy_curve_figure import accuracy_points
from cifarbench.clock import warmup
from cifarbench.columns import table_columns, time_to_target_columns
from cifarbench.targets import replicate_times, summarize_target, time_to_target


def epochs(accuracies: list[float | None], epoch_s: float = 10.0, eval_s: float = 3.0) -> list:
    """Per-epoch logs: each epoch takes `epoch_s` of training; evaluation is off the clock."""
    return [
        {
            "epoch": k,
            "time_s": epoch_s,
            "compute_s": epoch_s - 1,
            "steps": 10,
            "clock_s": k * epoch_s,
            "accuracy_pct": accuracy,
            "eval_s": None if accuracy is None else eval_s,
        }
        for k, accuracy in enumerate(accuracies, start=1)
    ]


def test_the_time_is_the_clock_at_the_end_of_the_first_epoch_that_reaches_the_target():
    log = epochs([42.0, 58.5, 60.0, 59.0, 71.0])
    assert time_to_target(log, 60) == {"reached": True, "epoch": 3, "time_s": 30.0}
    assert time_to_target(log, 40) == {"reached": True, "epoch": 1, "time_s": 10.0}
    # Evaluation time is never on it: 3 evaluations of 3 s before epoch 3 ended add nothing.
    assert time_to_target(log, 71)["time_s"] == 50.0


def test_a_target_never_reached_is_not_reached_never_zero_nor_the_full_time():
    log = epochs([42.0, 58.5, 59.9])
    assert time_to_target(log, 60) == {"reached": False, "epoch": None, "time_s": None}
    assert replicate_times(log, [50, 60]) == {
        "50": {"reached": True, "epoch": 2, "time_s": 20.0},
        "60": {"reached": False, "epoch": None, "time_s": None},
    }


def test_an_epoch_not_evaluated_never_counts_as_reaching_it():
    assert not time_to_target(epochs([None, None]), 10)["reached"]


def test_the_median_counts_a_replicate_that_never_reached_it_as_infinitely_slow():
    reached_at = [time_to_target(epochs(a), 60) for a in ([61], [50, 62], [50, 55, 65])]
    never = time_to_target(epochs([50, 55, 59]), 60)
    assert summarize_target(reached_at) == {"median_s": 20.0, "reached": 3, "n": 3}
    # Two of three reached it: the median is the slower of the two.
    assert summarize_target([reached_at[0], reached_at[1], never]) == {
        "median_s": 20.0,
        "reached": 2,
        "n": 3,
    }
    # Half never did: the median is infinite, so "not reached", with the count beside it.
    assert summarize_target([reached_at[0], never]) == {"median_s": None, "reached": 1, "n": 2}
    assert summarize_target([]) == {"median_s": None, "reached": 0, "n": 0}


def document(time_to_target: dict | None) -> dict:
    return {"targets": [60], "time_to_target": time_to_target}


def test_the_table_writes_an_empty_cell_and_the_count_for_a_target_not_reached():
    time_column, count_column = time_to_target_columns(60)
    assert (time_column.header, count_column.header) == ("Time to 60% (s)", "Time to 60% Reached")
    some = document({"60": {"median_s": 20.0, "reached": 2, "n": 3}})
    none = document({"60": {"median_s": None, "reached": 1, "n": 2}})
    assert (time_column.value(some), count_column.value(some)) == (20.0, "reached 2 of 3")
    assert (time_column.value(none), count_column.value(none)) == (None, "reached 1 of 2")
    not_measured = document(None)  # evaluate: end
    assert (time_column.value(not_measured), count_column.value(not_measured)) == (None, None)


def test_each_target_adds_its_two_columns_in_order():
    headers = [column.header for column in table_columns([50, 62.5])]
    at = headers.index("Time to 50% (s)")
    assert headers[at : at + 4] == [
        "Time to 50% (s)",
        "Time to 50% Reached",
        "Time to 62.5% (s)",
        "Time to 62.5% Reached",
    ]
    assert headers[at - 1] == "Stopped at Epoch"


def test_the_first_epoch_is_kept_apart_from_the_steady_ones():
    log = epochs([10, 20, 30, 40])
    log[0]["time_s"], log[0]["compute_s"] = 25.0, 24.0
    log[2]["time_s"] = 12.0
    split = warmup(log, first_step_s=2.0, compiled=False)
    assert split["first_epoch_time_s"] == 25.0
    assert split["steady_epoch_time_s"] == 10.0  # the median of epochs 2..4: 10, 12, 10
    assert split["first_step_excess_s"] == pytest.approx(2.0 - 0.9)  # a steady step: 9 s / 10
    assert split["compile_timed_as"] is None
    assert warmup(log, 2.0, compiled=True)["compile_timed_as"] == "first_step_excess"


def test_a_one_epoch_run_has_no_steady_epoch_and_reads_its_steady_step_from_the_rest():
    split = warmup(epochs([10]), first_step_s=1.8, compiled=True)
    assert split["steady_epoch_time_s"] is None
    assert split["first_step_excess_s"] == pytest.approx(1.8 - (9 - 1.8) / 9)
    assert math.isclose(split["first_epoch_time_s"], 10.0)


def test_the_accuracy_curve_goes_through_each_epochs_medians_over_replicates():
    def replicate(accuracies, epoch_s, status="ok"):
        return {"status": status, "epochs": epochs(accuracies, epoch_s)}

    result = {
        "replicates": [
            replicate([40, 50], 10),
            replicate([44, 56], 12),
            replicate([48, 60], 20),
            replicate([99, 99], 1, status="diverged"),  # not a finished replicate
        ]
    }
    assert accuracy_points(result) == [(12.0, 44), (24.0, 56)]
    assert accuracy_points({"replicates": [replicate([None, 70], 10)]}) == [(20.0, 70)]
