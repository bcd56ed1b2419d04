"""The data-source check (cifarbench.data_source): a config whose data differs from what
resources/ and results/ hold stops the run in one line, before any job, naming the files."""

import json
from pathlib import Path

import pytest

from cifarbench.data_source import archive_path, cache_path, check_data_source
from cifarbench.errors import UserError

OURS, OTHER = "a" * 32, "b" * 32


def result(root: Path, name: str, md5: str | None) -> Path:
    """A metrics JSON (or seed record) as the workflow writes it, reduced to what is checked."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"variant": path.stem, "data": {"md5": md5}}))
    return path


def touch(root: Path, name: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(b"")


def refusal(root: Path, md5: str = OURS) -> str:
    with pytest.raises(UserError) as error:
        check_data_source(md5, root)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_the_archive_and_cache_are_named_by_the_md5():
    assert archive_path(OURS) == f"resources/cifar-10-python-{OURS}.tar.gz"
    assert cache_path(OURS) == f"resources/cifar10-{OURS}.npz"


def test_a_fresh_folder_and_a_matching_one_pass(tmp_path):
    check_data_source(OURS, tmp_path)
    touch(tmp_path, archive_path(OURS))
    result(tmp_path, "results/cpu.json", OURS)
    result(tmp_path, "results/seeds/cpu/seed0.json", OURS)
    check_data_source(OURS, tmp_path)


def test_results_trained_on_other_data_are_named_with_the_fix(tmp_path):
    touch(tmp_path, archive_path(OURS))
    result(tmp_path, "results/cpu.json", OURS)
    for name in ("g-bn", "g-lr", "g-initial", "g-b8-w2"):
        result(tmp_path, f"results/{name}.json", OTHER)
    said = refusal(tmp_path)
    assert said.startswith(f"data.md5 is {OURS}, but results/ holds results trained on other ")
    assert f"md5 {OTHER}: results/g-b8-w2.json, results/g-bn.json, results/g-initial.json " in said
    assert "and 1 more" in said and "cpu.json" not in said
    assert "--configfile" in said and "config.local.yaml" in said
    assert "--config data_changed=True" in said


def test_a_seed_record_left_by_a_stopped_run_counts_too(tmp_path):
    result(tmp_path, "results/seeds/cpu/seed1.json", OTHER)
    assert "results/seeds/cpu/seed1.json" in refusal(tmp_path)


def test_other_archives_without_this_one_are_named_before_a_download(tmp_path):
    touch(tmp_path, archive_path(OTHER))
    touch(tmp_path, cache_path(OTHER))
    touch(tmp_path, f"resources/.cifar-10-python-{OURS}.tar.gz.x1.tmp")  # a stopped download
    said = refusal(tmp_path)
    assert "resources/ holds only other data" in said
    assert archive_path(OTHER) in said and cache_path(OTHER) in said
    touch(tmp_path, cache_path(OURS))  # this data prepared beside the other: nothing to say
    check_data_source(OURS, tmp_path)


def test_files_that_record_no_archive_are_left_to_their_readers(tmp_path):
    result(tmp_path, "results/old.json", None)  # a test's or a benchmark's document
    (tmp_path / "results" / "broken.json").write_text("{not json")
    (tmp_path / "results" / "list.json").write_text("[1, 2]")
    check_data_source(OURS, tmp_path)
