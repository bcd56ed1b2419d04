"""Shared fixtures; test data is built at run time (tiny CIFAR-10 archives, official format)."""

from pathlib import Path

import pytest

from cifar_archive import write_cifar_archive
from cifarbench import in_process
from cifarbench.archive import read_archive
from cifarbench.cache import Cifar
from workflow_helpers import study_settings


@pytest.fixture
def tiny_archive(tmp_path: Path) -> tuple[Path, str]:
    """(path, md5) of a 200-train / 50-test image archive in the official layout and encoding."""
    return write_cifar_archive(tmp_path / "tiny", train_per_class=20, test_per_class=5)


@pytest.fixture(scope="session")
def learnable(tmp_path_factory) -> Cifar:
    """A small archive, read, whose classes a CNN can tell apart in a few epochs."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("learnable"), 40, 10)
    return read_archive(archive, expect_train=400, expect_test=100)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """One real metrics document, whose replicates tests replace (training_helpers.like)."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("a"), 10, 4)
    data = read_archive(archive, expect_train=100, expect_test=40)
    settings = study_settings(workers=0, batch_size=20, epochs=1)
    return in_process.run_variant("cpu", data, settings, gpu_fallback="cpu", threads=1)
