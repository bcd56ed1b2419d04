"""Aggregation and figures: the study's header verbatim, means and stds that match the JSONs,
and fallback, skipped and diverged variants marked, never mixed in silently."""

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from cifar_archive import write_cifar_archive
from cifarbench import (
    comparison_figure,
    figure_style,
    in_process,
    ladder_figure,
    loss_figure,
    table,
    tradeoff_figure,
    train,
)
from cifarbench.archive import read_archive
from cifarbench.columns import EPOCHS, VARIANT
from cifarbench.document import check_record
from cifarbench.errors import UserError
from cifarbench.figures import draw_figures
from cifarbench.settings import Settings
from workflow_helpers import FIGURES, study_settings

# Each variant's baseline, as the config would choose it (by the device it asks for).
BASELINES = {"cpu": "cpu", "g-b16-w4": "g-initial", "g-skip": "g-initial", "g-lr-huge": "g-initial"}
STUDY_HEADER = (
    "Optimization Technique,Training Time (seconds),Accuracy (%),Memory Usage (MB),Epochs"
)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """Real metrics documents: cpu (2 replicates), a GPU variant that fell back, a skipped and a
    diverged one, written as the train rule writes them."""

    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("a"), 10, 4)
    data = read_archive(archive, expect_train=100, expect_test=40)
    base = study_settings(workers=0, batch_size=20, lr=0.01, epochs=1)
    cpu = in_process.run_variant("cpu", data, {**base, "replicates": 2}, "cpu", threads=1)
    original = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        fallback = in_process.run_variant("g-b16-w4", data, {**base, "device": "cuda"}, "cpu", 1)
        skipped = in_process.run_variant("g-skip", data, {**base, "device": "cuda"}, "skip", 1)
    finally:
        torch.cuda.is_available = original
    diverged = in_process.run_variant(
        "g-lr-huge", data, {**base, "lr": 1e6, "log_every": 1}, "cpu", 1
    )
    folder = tmp_path_factory.mktemp("results")
    paths = []
    for document in (cpu, fallback, skipped, diverged):
        path = folder / f"{document['variant']}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def csv(documents, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "training_data.csv"
    table.write_csv(table.build_table(table.load_results(documents), BASELINES), str(path))
    return path


def test_csv_starts_with_the_studys_header_verbatim(csv):
    assert csv.read_text().splitlines()[0].startswith(STUDY_HEADER + ",")


def test_csv_means_and_stds_match_the_jsons(csv, documents):
    rows = pd.read_csv(csv).set_index("Optimization Technique")
    cpu = json.loads(Path(documents[0]).read_text())
    times = [r["training_time_s"] for r in cpu["replicates"]]
    accuracies = [r["accuracy_pct"] for r in cpu["replicates"]]
    assert rows.loc["cpu", "Training Time (seconds)"] == pytest.approx(sum(times) / 2, abs=0.006)
    assert rows.loc["cpu", "Accuracy (%)"] == pytest.approx(sum(accuracies) / 2, abs=0.006)
    assert rows.loc["cpu", "Accuracy Std (%)"] == pytest.approx(
        pd.Series(accuracies).std(), abs=0.006
    )
    assert rows.loc["cpu", "Replicates"] == 2
    assert rows.loc["cpu", "Epochs"] == 1
    assert rows.loc["cpu", "Speedup vs cpu"] == 1.0


def test_csv_says_where_each_variant_ran_and_why(csv):
    rows = pd.read_csv(csv).set_index("Optimization Technique")
    fallback = rows.loc["g-b16-w4"]
    assert (fallback["Device Requested"], fallback["Device Used"]) == ("cuda", "cpu")
    assert bool(fallback["Fallback"]) and "ran on the CPU" in fallback["Reason"]
    assert fallback["Batch Size"] == 20 and fallback["Status"] == "ok"
    skipped = rows.loc["g-skip"]
    assert skipped["Status"] == "skipped" and pd.isna(skipped["Training Time (seconds)"])
    assert skipped["Device Used"] == "none"
    diverged = rows.loc["g-lr-huge"]
    assert diverged["Status"] == "diverged" and pd.isna(diverged["Accuracy (%)"])
    assert re.search(r"epoch 1, batch \d+$", diverged["Reason"])


def test_speedup_is_empty_without_the_cpu_variant(documents):
    rows = table.build_table(table.load_results(documents[1:]), BASELINES)
    assert rows["Speedup vs cpu"].isna().all()


def test_a_file_that_is_not_a_metrics_document_is_refused(tmp_path, documents):
    broken = json.loads(Path(documents[0]).read_text())
    del broken["summary"]
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(Exception, match=r"cpu.json: not a cifarbench metrics file.*summary"):
        table.load_results([str(path)])


def test_a_runs_figures_are_drawn_with_every_kind_of_variant(csv, documents, tmp_path):
    """The one list of a run's figures: the plot rule declares the same (test_workflow.py),
    publish_results writes the same (test_publish.py)."""
    rows, results = pd.read_csv(csv), table.load_results(documents)
    ladders = {"cpu": ["cpu", "g-lr-huge"], "gpu": ["g-b16-w4", "g-skip"], "none": ["absent"]}
    sweeps = {"s": {"cpu": {"lr": 0.01, "workers": 0}, "g-b16-w4": {"lr": 0.01, "workers": 4}}}
    drawn = draw_figures(rows, results, ladders, sweeps, tmp_path)
    assert drawn == [*FIGURES, "sweeps/s.png"]
    with Image.open(tmp_path / FIGURES[0]) as image:  # the study's comparison
        assert image.info["dpi"] == pytest.approx((300, 300), abs=1)
        assert image.height > image.width  # three stacked panels
    for name in drawn:
        assert (tmp_path / name).stat().st_size > 10_000
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png")) == sorted(drawn)


def test_a_run_without_a_ladder_rung_still_gets_its_ladder_figure(csv, documents, tmp_path):
    rows, results = pd.read_csv(csv), table.load_results(documents)
    path = tmp_path / "ladder.png"
    ladder_figure.ladder(rows, results, {"cpu": ["absent", "also-absent"]}, str(path))
    assert path.stat().st_size > 5_000


def test_a_ladder_with_one_rung_in_the_run_gets_no_panel(csv, documents, tmp_path, monkeypatch):
    rows, results = pd.read_csv(csv), table.load_results(documents)
    drawn = []
    monkeypatch.setattr(ladder_figure, "save", lambda figure, path: drawn.append(figure))
    ladders = {"cpu": ["cpu", "g-lr-huge"], "recipe": ["cpu", "absent"]}
    ladder_figure.ladder(rows, results, ladders, str(tmp_path / "l.png"))
    assert [axis.get_title(loc="left") for axis in drawn[0].axes] == ["cpu ladder: from cpu up"]


def test_a_sweeps_cells_are_named_by_their_values_on_the_tradeoff():
    cells = ["batch-workers.b4-w0", "batch-workers.b16-w4"]
    assert tradeoff_figure.short_names(cells) == ["b4-w0", "b16-w4"]
    assert tradeoff_figure.short_names([*cells, "cpu"]) == [*cells, "cpu"]
    assert tradeoff_figure.short_names([*cells, "other.b4-w0"]) == [*cells, "other.b4-w0"]


def test_names_of_points_close_together_do_not_overlap(csv, tmp_path, monkeypatch):
    rows = pd.read_csv(csv)
    finished = rows[rows["Status"] == "ok"].copy()
    twins = pd.concat([finished.head(1)] * 3, ignore_index=True)
    twins[VARIANT.header] = ["one", "two", "three"]
    drawn = []
    monkeypatch.setattr(tradeoff_figure, "save", lambda figure, path: drawn.append(figure))
    tradeoff_figure.tradeoff(twins, str(tmp_path / "t.png"))
    names = {"one", "two", "three"}  # not the chance line's label
    offsets = [text.xyann[1] for text in drawn[0].axes[0].texts if text.get_text() in names]
    assert len(offsets) == 3 and len(set(offsets)) == 3


def test_the_ladder_figure_names_its_rungs_epochs_not_the_whole_runs(
    csv, documents, tmp_path, monkeypatch
):
    rows, results = pd.read_csv(csv), table.load_results(documents)
    rows.loc[rows[VARIANT.header] == "g-b16-w4", EPOCHS.header] = 3  # a recipe's, say
    drawn = []
    monkeypatch.setattr(ladder_figure, "save", lambda figure, path: drawn.append(figure))
    ladder_figure.ladder(rows, results, {"cpu": ["cpu", "g-lr-huge"]}, str(tmp_path / "l.png"))
    subtitle = drawn[0]._suptitle.get_text().splitlines()[1]
    assert subtitle.startswith("1 epoch,"), subtitle


def test_a_ladder_bar_says_all_it_adds_to_the_bar_drawn_above_it(
    csv, documents, tmp_path, monkeypatch
):
    """A run without the middle rungs: the bar below adds several settings, and says so."""
    rows, results = pd.read_csv(csv), table.load_results(documents)
    drawn = []
    monkeypatch.setattr(ladder_figure, "save", lambda figure, path: drawn.append(figure))
    rungs = ["cpu", "missing-rung", "g-lr-huge"]
    ladder_figure.ladder(rows, results, {"cpu": rungs}, str(tmp_path / "l.png"))
    title = drawn[0]._suptitle.get_text()
    assert "each bar adds the settings it names to the bar above it" in title
    assert "one" not in title
    labels = [label.get_text() for label in drawn[0].axes[0].get_yticklabels()]
    # cpu has two replicates; the diverged variant one, a learning rate and a log step more.
    assert labels == ["cpu (stock)", "g-lr-huge\n+ lr: 1000000.0, replicates: 1, log_every: 1"]


def test_a_ladder_whose_stock_rung_did_not_finish_says_so_instead_of_a_speedup(
    csv, documents, tmp_path, monkeypatch
):
    rows, results = pd.read_csv(csv), table.load_results(documents)
    drawn = []
    monkeypatch.setattr(ladder_figure, "save", lambda figure, path: drawn.append(figure))
    ladder_figure.ladder(rows, results, {"cpu": ["g-lr-huge", "cpu"]}, str(tmp_path / "l.png"))
    labels = [text.get_text() for text in drawn[0].axes[0].texts]
    assert labels[0] == "diverged"
    assert labels[1].endswith("%, no stock time") and "nan" not in labels[1]


def test_a_ladder_rung_is_named_by_the_setting_it_turns_on():
    below, rung = {"loader": "grouped", "lr": 0.1}, {"loader": "tensor", "lr": 0.1}
    assert ladder_figure._change(below, rung) == "loader: tensor"


def test_labels_mark_fallback_skipped_and_diverged(csv):
    rows = pd.read_csv(csv).set_index("Optimization Technique", drop=False)
    labels = {name: comparison_figure._label(row) for name, row in rows.iterrows()}
    kinds = {name: figure_style.bar_kind(row) for name, row in rows.iterrows()}
    assert labels["cpu"] == "cpu" and kinds["cpu"] == "cpu"
    assert labels["g-b16-w4"] == "g-b16-w4\n(ran on CPU)" and kinds["g-b16-w4"] == "fallback"
    assert labels["g-skip"] == "g-skip\n(skipped)" and kinds["g-skip"] == "none"
    assert labels["g-lr-huge"] == "g-lr-huge\n(diverged)"


def test_documents_are_not_modified_by_aggregation(documents):
    before = [Path(p).read_text() for p in documents]
    table.build_table(copy.deepcopy(table.load_results(documents)), BASELINES)
    assert [Path(p).read_text() for p in documents] == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace('"accuracy_pct": {', '"accuracy_pct": {"x": NaN, '),
            "NaN is not a finite number",
        ),
        (
            lambda text: re.sub(
                r'"training_time_s": [0-9.e-]+', '"training_time_s": 1e308', text, count=1
            ),
            "1e+308 is greater than the maximum",
        ),
        (
            lambda text: re.sub(
                r'"training_time_s": [0-9.e-]+', '"training_time_s": -1.5', text, count=1
            ),
            "-1.5 is less than the minimum",
        ),
        (
            lambda text: text.replace('"variant": "cpu"', '"variant": "cpu-fast"'),
            "holds variant 'cpu-fast', not 'cpu'",
        ),
        (  # parses as infinity
            lambda text: re.sub(r'"lr": [0-9.e-]+', '"lr": 1e400', text, count=1),
            "1e400 is not a finite number",
        ),
        (
            lambda text: text.replace('"model": "net", ', ""),
            "not a cifarbench metrics file: settings: 'model' is a required property",
        ),
        (
            lambda text: text.replace('"loader": "torchvision"', '"loader": ["tensor"]'),
            "settings.loader: ['tensor'] is not one of",
        ),
        (
            lambda text: text.replace('"epochs": 1,', '"epochs": 1e30,', 1),
            "epochs: 1e+30 is not of type 'integer'",
        ),
        (
            lambda text: re.sub(r'"rss_mean_mb": [0-9.e-]+', '"rss_mean_mb": "big"', text, count=1),
            "replicates.0.memory.rss_mean_mb: 'big' is not of type",
        ),
        (
            lambda text: re.sub(r'"epochs": \[\{"epoch": 1, ', '"epochs": [{', text, count=1),
            "replicates.0.epochs.0: 'epoch' is a required property",
        ),
        (
            lambda text: text.replace(
                '"reason": null', '"reason": ' + "[" * 100_000 + "]" * 100_000
            ),
            "cannot read metrics: nested too deeply",
        ),
        (
            lambda text: text.replace('"reason": null', '"reason": ' + "[" * 30 + "]" * 30),
            "cannot read metrics: nested deeper than 16 levels",
        ),
        (
            lambda text: text.replace('"torch_threads": 1', '"torch_threads": ' + "9" * 5000),
            "cannot read metrics: Exceeds the limit (4300 digits)",
        ),
    ],
)
def test_a_corrupted_metrics_file_is_refused_naming_it(tmp_path, documents, edit, message):
    path = tmp_path / "cpu.json"
    path.write_text(edit(json.dumps(json.loads(Path(documents[0]).read_text()))))
    with pytest.raises(UserError, match=re.escape(message)):
        table.load_results([str(path)])


def test_an_endless_metrics_file_is_refused_after_a_bounded_read(tmp_path):
    path = tmp_path / "cpu.json"
    path.symlink_to("/dev/zero")  # read whole, it would fill the memory
    with pytest.raises(UserError, match=r"cpu.json: cannot read metrics: larger than 64 MB"):
        table.load_results([str(path)])


def test_an_edited_seed_record_is_refused_in_one_line(tmp_path):
    data = read_archive(write_cifar_archive(tmp_path, 10, 4)[0], 100, 40)
    settings = Settings.from_dict(study_settings(workers=0, epochs=1))
    record = train.run_seed("cpu", data, settings, gpu_fallback="cpu", threads=1, seed=0)
    assert check_record(record, "seed0.json") is record
    without_time = {**record, "job": {"start": "", "end": ""}}
    with pytest.raises(UserError, match=r"seed0.json: not a cifarbench seed record: job: "):
        check_record(without_time, "seed0.json")
    record = {**record, "settings": {**record["settings"], "workers": -1}}
    with pytest.raises(UserError, match=r"not a cifarbench seed record: settings.workers: -1"):
        check_record(record, "seed0.json")


def test_a_result_trained_under_other_settings_than_asked_is_refused(documents):
    results = table.load_results(documents)
    asked = {result["variant"]: result["settings"] for result in results}
    assert table.load_results(documents, asked) == results
    asked["cpu"] = {**asked["cpu"], "epochs": 6}
    with pytest.raises(UserError) as error:
        table.load_results(documents, asked)
    assert str(error.value) == (
        f"{documents[0]}: trained with epochs: 1, the config asks for epochs: 6; to retrain "
        "it, remove results/cpu.json and results/seeds/cpu/, and run again"
    )


def test_a_cell_a_spreadsheet_would_run_is_made_inert(documents, tmp_path):
    results = table.load_results(documents[:1])
    results[0]["device"]["name"] = '=HYPERLINK("http://evil")'
    path = tmp_path / "training_data.csv"
    table.write_csv(table.build_table(results, BASELINES), str(path))
    assert pd.read_csv(path).loc[0, "Device Name"] == '\'=HYPERLINK("http://evil")'


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures a figure function made, kept instead of saved."""
    figures_made = []
    for module in (comparison_figure, loss_figure):
        monkeypatch.setattr(module, "save", lambda figure, path: figures_made.append(figure))
    return figures_made


def test_every_figure_says_epochs_data_size_and_device_and_shows_chance(csv, documents, drawn):
    rows = pd.read_csv(csv)
    comparison_figure.comparison(rows, "unused.png")
    title = drawn[0].axes[0].get_title()
    assert "1 epoch, 100 training and 40 test images; ran on " in title
    accuracy_lines = [line.get_ydata()[0] for line in drawn[0].axes[1].get_lines()]
    assert figure_style.CHANCE_PCT in accuracy_lines
    assert "chance (10%)" in [text.get_text() for text in drawn[0].axes[1].texts]


def test_the_studys_markers_say_where_and_how_long_the_study_trained(csv, drawn):
    """cpu is the study's CPU run, g-b16-w4 one of its GPU runs, both 10 epochs; this run's
    bars are 1 epoch, which the subtitle says."""
    comparison_figure.comparison(pd.read_csv(csv), "unused.png")
    legend = [text.get_text() for text in drawn[0].axes[0].get_legend().get_texts()]
    assert "the study's laptop CPU (WSL2), 10 epochs" in legend
    assert "the study's laptop GPU (WSL2), 10 epochs" in legend
    title = drawn[0].axes[0].get_title()
    assert title.endswith("\nmarkers: the study's 10-epoch runs; bars: this run's 1 epoch")


def test_a_run_of_the_studys_epochs_needs_no_word_on_them(csv, drawn):
    rows = pd.read_csv(csv)
    rows[EPOCHS.header] = 10
    comparison_figure.comparison(rows, "unused.png")
    assert "markers:" not in drawn[0].axes[0].get_title()


def test_a_run_where_every_variant_was_skipped_draws_no_negative_axis(documents, drawn):
    results = table.load_results(documents)
    skipped = table.build_table([r for r in results if r["status"] == "skipped"], BASELINES)
    comparison_figure.comparison(skipped, "unused.png")
    assert all(axis.get_ylim()[0] >= 0 for axis in drawn[0].axes[:3])
    assert "no variant finished" in drawn[0].axes[0].get_title()


def test_a_one_epoch_loss_plot_is_centred_on_its_epoch(documents, drawn):
    loss_figure.loss_curves(table.load_results(documents), "unused.png", "1 epoch")
    assert drawn[0].axes[0].get_xlim() == (0.5, 1.5)


def test_the_trade_off_tells_a_fallback_by_shape_not_only_colour():
    shapes = tradeoff_figure.MARKERS
    assert len({shapes["cpu"], shapes["cuda"], shapes["fallback"]}) == 3
