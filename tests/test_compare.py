"""Results from two machines side by side: the table, the figure, and `snakemake compare` on
two constructed result folders, one variant run with other settings on the second machine."""

import copy
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch

from cifarbench import compare, compare_figure, in_process, result_folders
from cifarbench.columns import MACHINE, TIME, VARIANT
from cifarbench.compare import SAME_SETTINGS, SPEEDUP_VS_FIRST
from cifarbench.config import all_variants, baselines
from cifarbench.errors import UserError
from cifarbench.settings import settings_hash
from workflow_helpers import copy_workflow, shipped_config, snakemake, study_settings

ORDER = list(all_variants(shipped_config()))
BASELINES = baselines(shipped_config())


@pytest.fixture(scope="module")
def trained(learnable) -> dict[str, dict]:
    """One epoch of `cpu` and of `g-initial` (which falls back to the CPU here)."""
    settings = study_settings(workers=0, batch_size=50, epochs=1)
    cpu = in_process.run_variant("cpu", learnable, settings, "cpu", threads=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        gpu = {**settings, "device": "cuda"}
        initial = in_process.run_variant("g-initial", learnable, gpu, "cpu", threads=1)
    return {"cpu": cpu, "g-initial": initial}


def on_machine(document: dict, name: str, faster: float = 1.0, **settings) -> dict:
    """`document` as if measured on machine `name`, `faster` times faster, its settings
    changed by `settings` (and its settings hash with them)."""
    document = copy.deepcopy(document)
    document["environment"]["machine"].update(name=name, id=f"{name}-id")
    for replicate in document["replicates"]:
        replicate["training_time_s"] /= faster
    document["summary"]["training_time_s"]["mean"] /= faster
    document["settings"].update(settings)
    document["settings_hash"] = settings_hash(document["settings"])
    return document


def on_the_gpu(document: dict, variant: str) -> dict:
    document = copy.deepcopy(document)
    document["variant"] = variant
    document["device"].update(used="cuda", name="NVIDIA A100-SXM4-80GB", fallback=False)
    return document


def write_folder(folder: Path, documents: list[dict]) -> str:
    folder.mkdir(parents=True)
    for document in documents:
        (folder / f"{document['variant']}.json").write_text(json.dumps(document))
    return str(folder)


@pytest.fixture(scope="module")
def folders(trained, tmp_path_factory) -> list[str]:
    """The laptop ran cpu and g-initial (on its CPU); the A100 node ran cpu twice as fast,
    g-initial on its GPU at batch 8 (other settings: not comparable), and g-b16-w4."""
    root = tmp_path_factory.mktemp("runs")
    laptop = [on_machine(trained[name], "laptop") for name in ("cpu", "g-initial")]
    a100 = [
        on_machine(trained["cpu"], "a100", faster=2.0),
        on_machine(on_the_gpu(trained["g-initial"], "g-initial"), "a100", 4.0, batch_size=8),
        on_machine(on_the_gpu(trained["g-initial"], "g-b16-w4"), "a100", 5.0, batch_size=16),
    ]
    return [write_folder(root / "laptop", laptop), write_folder(root / "a100", a100)]


def test_one_row_per_variant_and_machine_compared_with_the_first(folders, caplog):
    with caplog.at_level(logging.WARNING):
        rows = compare.compare_table(folders, ORDER, BASELINES)
    assert list(zip(rows[VARIANT.header], rows[MACHINE.header], strict=True)) == [
        ("cpu", "laptop"),
        ("cpu", "a100"),
        ("g-initial", "laptop"),
        ("g-initial", "a100"),
        ("g-b16-w4", "a100"),
    ]
    assert list(rows.columns[:6]) == [
        "Optimization Technique",
        "Training Time (seconds)",
        "Accuracy (%)",
        "Memory Usage (MB)",
        "Epochs",
        "Machine",
    ]
    speedups = rows[SPEEDUP_VS_FIRST.header].tolist()
    assert speedups[:3] == [1.0, 2.0, 1.0]
    assert pd.isna(speedups[3]) and pd.isna(speedups[4])  # other settings; not on the laptop
    assert rows[SAME_SETTINGS.header].tolist() == [True, True, True, False, None]
    assert "g-initial on a100 ran other settings than on the first machine" in caplog.text


def test_a_folder_holding_two_machines_results_is_refused(folders, trained, tmp_path):
    mixed = write_folder(
        tmp_path / "mixed",
        [on_machine(trained["cpu"], "laptop"), on_machine(trained["g-initial"], "desktop")],
    )
    with pytest.raises(UserError, match=r"mixed: holds results of 2 machines, desktop \(id "):
        compare.compare_table([folders[0], mixed], ORDER, BASELINES)


def test_two_folders_from_one_machine_are_told_apart_by_folder(folders):
    rows = compare.compare_table([folders[0], folders[0]], ORDER, BASELINES)
    assert set(rows[MACHINE.header]) == {f"laptop ({folders[0]})"}
    assert rows[SPEEDUP_VS_FIRST.header].tolist() == [1.0] * 4


@pytest.mark.parametrize(
    ("named", "message"),
    [
        (["laptop"], "config: compare: name two or more result folders"),
        (["laptop", "nowhere"], "config: compare: {root}/nowhere: no such folder"),
        (["laptop", "empty"], "config: compare: {root}/empty: holds no <variant>.json results"),
    ],
)
def test_compare_folders_are_checked(folders, named, message):
    root = Path(folders[0]).parent
    (root / "empty").mkdir(exist_ok=True)
    with pytest.raises(UserError) as error:
        result_folders.metrics_files([str(root / name) for name in named])
    assert str(error.value).startswith(message.format(root=root))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("runs/a, runs/b", ["runs/a", "runs/b"]), (["x", "y"], ["x", "y"])],
)
def test_compare_takes_a_list_or_a_comma_separated_string(value, expected):
    assert result_folders.compare_folders({"compare": value}) == expected


def test_the_figure_marks_a_fallback_and_other_settings(folders, monkeypatch):
    drawn = []
    monkeypatch.setattr(compare_figure, "save", lambda figure, path: drawn.append(figure))
    compare_figure.machines(compare.compare_table(folders, ORDER, BASELINES), "unused.png")
    time_axis, accuracy_axis = drawn[0].axes
    hatches = [bar.get_hatch() for bar in time_axis.patches]
    # laptop: cpu, g-initial (ran on its CPU), g-b16-w4 (not run); a100: cpu, g-initial, g-b16-w4
    assert hatches == [None, "//", None, None, "xx", None]
    assert [text.get_text() for text in time_axis.texts][2] == "not run"
    legend = [text.get_text() for text in time_axis.get_legend().get_texts()]
    assert legend[:2] == ["laptop", "a100"]
    assert set(legend[2:]) == {meaning for _, meaning in compare_figure.HATCHES.values()}
    assert "a100: " in time_axis.get_title() and "NVIDIA A100-SXM4-80GB" in time_axis.get_title()
    assert [bar.get_hatch() for bar in accuracy_axis.patches] == hatches


@pytest.mark.slow
def test_snakemake_compare_writes_the_table_and_the_figure(folders, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    for folder in folders:
        copy_of = workdir / "runs" / Path(folder).name
        copy_of.mkdir(parents=True)
        for document in Path(folder).glob("*.json"):
            (copy_of / document.name).write_text(document.read_text())
    run = snakemake(
        workdir, "compare", "--cores", "1", "--config", "compare=[runs/laptop,runs/a100]"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = pd.read_csv(workdir / "results" / "compare" / "training_data.csv")
    assert rows[MACHINE.header].tolist() == ["laptop", "a100", "laptop", "a100", "a100"]
    assert rows[SPEEDUP_VS_FIRST.header].tolist()[:3] == [1.0, 2.0, 1.0]
    assert rows[SAME_SETTINGS.header].tolist()[3] is False
    assert rows[TIME.header].notna().all()
    assert (workdir / "results" / "compare" / "machines.png").stat().st_size > 10_000
    log = (workdir / "logs" / "compare" / "compare.log").read_text()
    assert "g-initial on a100 ran other settings than on the first machine" in log
    assert not list((workdir / "results").glob("*.json"))  # nothing trained


@pytest.mark.slow
def test_snakemake_compare_without_folders_says_how(tmp_path):
    run = snakemake(copy_workflow(tmp_path / "wf"), "compare", "--cores", "1")
    assert run.returncode != 0
    assert "config: compare: name two or more result folders" in run.stderr
