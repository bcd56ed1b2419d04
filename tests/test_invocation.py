"""Checks on the snakemake command line (cifarbench.invocation), each a one-line cause with
what to type instead. Through the real snakemake: tests/test_second_command.py."""

from pathlib import Path

import pytest

from cifarbench.errors import UserError
from cifarbench.invocation import check_config_files, check_report, requested_report


def test_a_results_file_given_as_a_config_file_says_to_put_targets_first(tmp_path):
    with pytest.raises(UserError) as error:
        check_config_files(
            [tmp_path / "offline.yaml", tmp_path / "results/g-b16-w4.json"], tmp_path
        )
    assert str(error.value) == (
        "--configfile results/g-b16-w4.json: a target, not a config file (--configfile takes "
        "every file after it): put targets first, snakemake results/g-b16-w4.json "
        "--configfile offline.yaml"
    )
    check_config_files([tmp_path / "offline.yaml", Path("/elsewhere/my.json")], tmp_path)


@pytest.mark.parametrize(
    ("argv", "report"),
    [
        (["snakemake", "--report", "results/report.html"], "results/report.html"),
        (["snakemake", "--report=x/r.zip", "--cores", "2"], "x/r.zip"),
        (["snakemake", "--report", "--config", "only=cpu"], "report.html"),  # Snakemake's default
        (["snakemake", "--report"], "report.html"),
        (["snakemake", "-n", "results/report.html"], None),
    ],
)
def test_the_report_path_is_read_from_the_command_line(argv, report):
    assert requested_report(argv) == report


def csv_in(root: Path, folder: str) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "training_data.csv").write_text("Optimization Technique\n")


def test_a_partial_runs_report_goes_to_its_folder_never_over_the_studys(tmp_path):
    csv_in(tmp_path, "results/partial/cpu")
    check_report("results/partial/cpu/report.html", "results/partial/cpu", tmp_path)
    check_report("/tmp/anywhere.html", "results/partial/cpu", tmp_path)
    with pytest.raises(UserError) as error:
        check_report("results/report.html", "results/partial/cpu", tmp_path)
    assert "its report goes beside them (--report results/partial/cpu/report.html)" in str(
        error.value
    )


def test_a_report_of_a_run_that_did_not_finish_names_the_runs_that_did(tmp_path):
    csv_in(tmp_path, "results/partial/cpu")
    csv_in(tmp_path, "results/quick")
    with pytest.raises(UserError) as error:
        check_report("results/report.html", "results", tmp_path)
    assert str(error.value) == (
        "--report results/report.html: results/training_data.csv does not exist, so the run "
        "these options describe has not finished here; finished: results/partial/cpu/, "
        "results/quick/ (report one with the --config it ran with)"
    )
