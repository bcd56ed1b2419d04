"""The second command a user types, through the real `snakemake` on a tiny archive: nothing
downloaded, prepared or trained is lost to a command with another data config, and the README's
commands work after each kind of run."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cifar_archive import write_cifar_archive
from workflow_helpers import data_workflow, shipped_config, snakemake, write_data_config

pytestmark = pytest.mark.slow

# The README's offline run: the data source in a config file (data.yaml here), one variant.
RUN = ("--configfile", "data.yaml", "--config", "only=cpu", "epochs=1")
KEPT = [  # what that run downloaded, prepared and trained
    "resources/cifar-10-python-{md5}.tar.gz",
    "resources/cifar10-{md5}.npz",
    "results/seeds/cpu/seed0.json",
    "results/cpu.json",
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, str]:
    return write_cifar_archive(tmp_path_factory.mktemp("archive"), 20, 5)


@pytest.fixture(scope="module")
def offline(tmp_path_factory, archive) -> Path:
    """A finished offline run of one variant, one epoch."""
    workdir = data_workflow(tmp_path_factory.mktemp("offline"), *archive)
    run = snakemake(workdir, "--cores", "2", *RUN)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir


def kept(workdir: Path, md5: str) -> dict[str, tuple[int, bytes]]:
    """Each file the run made -> (modification time, content)."""
    paths = [workdir / name.format(md5=md5) for name in KEPT]
    return {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in paths}


def one_line_cause(run) -> str:
    """The cause Snakemake prints under `UserError in file ...` (on stdout with -n): one line."""
    lines = (run.stderr + run.stdout).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("UserError in file"))
    return lines[at + 1]


@pytest.mark.parametrize(
    "command",
    [
        ("results/cpu.json",),  # the README's one-variant command, without the config file
        ("-n",),
        ("--cores", "2"),
        ("--report", "results/report.html"),
    ],
    ids=["target", "dry-run", "whole-study", "report"],
)
def test_a_forgotten_configfile_keeps_the_data_and_results_and_says_so(offline, archive, command):
    _, md5 = archive
    before = kept(offline, md5)
    run = snakemake(offline, *command)
    assert run.returncode != 0
    official = shipped_config()["data"]["md5"]
    assert one_line_cause(run).startswith(
        f"data.md5 is {official}, but results/ holds results trained on other data "
        f"(md5 {md5}: results/cpu.json, results/seeds/cpu/seed0.json): pass the config file"
    )
    assert "rule download" not in run.stdout + run.stderr
    assert kept(offline, md5) == before
    assert json.loads((offline / "results" / "cpu.json").read_text())["data"]["md5"] == md5


def test_the_same_command_with_its_config_file_has_nothing_to_do(offline):
    run = snakemake(offline, "-n", *RUN)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_a_target_after_configfile_is_named_as_a_target(offline, archive):
    before = kept(offline, archive[1])
    run = snakemake(offline, "--configfile", "data.yaml", "results/cpu.json")
    assert run.returncode != 0
    assert one_line_cause(run) == (
        "--configfile results/cpu.json: a target, not a config file (--configfile takes every "
        "file after it): put targets first, snakemake results/cpu.json --configfile data.yaml"
    )
    assert kept(offline, archive[1]) == before


def test_a_mistyped_target_names_the_variant_meant(offline):
    run = snakemake(offline, "-n", "results/g-b16-w8.json", "--configfile", "data.yaml")
    assert run.returncode != 0
    assert (
        "UserError: results/g-b16-w8.json: unknown variant 'g-b16-w8' (did you mean "
        "'g-b16w8'?); a variant's target is results/<variant>.json"
    ) in run.stdout + run.stderr
    assert "MissingRuleException" not in run.stdout + run.stderr


def test_only_with_a_typo_suggests_the_name_and_accepts_spaces(offline):
    typo = snakemake(offline, "-n", "--configfile", "data.yaml", "--config", "only=cpu,g-b16-w8")
    assert typo.returncode != 0
    assert one_line_cause(typo) == (
        "config: only: unknown variant 'g-b16-w8' (did you mean 'g-b16w8'?)"
    )
    spaced = snakemake(
        offline, "-n", "--configfile", "data.yaml", "--config", "only=cpu, g-b16-w4", "epochs=1"
    )
    assert spaced.returncode == 0, spaced.stderr[-2000:]
    assert "results/partial/cpu+g-b16-w4/training_data.csv" in spaced.stdout


def test_new_data_on_purpose_goes_beside_the_old_and_retrains(offline, archive, tmp_path):
    """Another archive: refused until the user says the data changed; then the plan fetches and
    prepares it beside the first and retrains the result, and nothing of the first is gone."""
    other, other_md5 = write_cifar_archive(tmp_path / "other", 20, 5, seed=1)
    write_data_config(offline / "other.yaml", other, other_md5, 200, 50)
    config = ("--configfile", "other.yaml", "--config", "only=cpu", "epochs=1")
    refused = snakemake(offline, "-n", *config)
    assert refused.returncode != 0
    assert one_line_cause(refused).startswith(f"data.md5 is {other_md5}, but results/")
    planned = snakemake(offline, "-n", *config, "data_changed=True")
    assert planned.returncode == 0, planned.stderr[-2000:]
    for rule in ("download", "prepare", "train", "summarize"):
        assert f"rule {rule}:" in planned.stdout
    assert f"resources/cifar-10-python-{other_md5}.tar.gz" in planned.stdout
    assert all((offline / name.format(md5=archive[1])).exists() for name in KEPT)


def test_the_partial_runs_report_goes_to_its_folder(offline):
    report = offline / "results" / "partial" / "cpu" / "report.html"
    run = snakemake(offline, *RUN, "--report", "results/partial/cpu/report.html")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "training_data.csv" in report.read_text()
    over_the_study = snakemake(offline, *RUN, "--report", "results/report.html")
    assert over_the_study.returncode != 0
    assert one_line_cause(over_the_study).startswith(
        "--report results/report.html: the run these options describe writes its CSV and "
        "figures to results/partial/cpu/, and its report goes beside them"
    )
    assert not (offline / "results" / "report.html").exists()


@pytest.fixture(scope="module")
def local(tmp_path_factory, archive) -> Path:
    """A study of one variant (the whole config), its data source in config.local.yaml: run
    whole with epochs=1, then as an only= run and as a tag= run of the same result."""
    workdir = data_workflow(tmp_path_factory.mktemp("local"), *archive)
    config = shipped_config()
    config["variants"] = {"cpu": {}}
    del config["ladders"], config["ladder_settings"], config["sweeps"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.move(workdir / "data.yaml", workdir / "config.local.yaml")
    for extra in ((), ("only=cpu",), ("only=cpu", "tag=quick")):
        run = snakemake(workdir, "--cores", "2", "--config", "epochs=1", *extra)
        assert run.returncode == 0, run.stderr[-3000:]
    return workdir


@pytest.mark.parametrize(
    ("config", "report"),
    [
        ((), "results/report.html"),  # the README's own command, after the epochs=1 run
        (("--config", "epochs=1", "only=cpu"), "results/partial/cpu/report.html"),
        (("--config", "epochs=1", "only=cpu", "tag=quick"), "results/quick/report.html"),
    ],
    ids=["whole", "only", "tag"],
)
def test_the_readmes_report_command_works_after_each_kind_of_run(local, config, report):
    run = snakemake(local, *config, "--report", report)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "training_data.csv" in (local / report).read_text()


def test_config_local_yaml_is_read_so_the_data_source_is_written_once(local):
    """The README's one-variant command, with no --configfile: config.local.yaml has the data."""
    run = snakemake(local, "-n", "results/cpu.json", "--config", "epochs=1")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr
