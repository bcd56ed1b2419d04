"""Shared fixtures; test data is built at run time (tiny CIFAR-10 archives, official format)."""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cifar_archive import write_cifar_archive
from cifarbench import in_process, nvml
from cifarbench.archive import read_archive
from cifarbench.cache import Cifar
from workflow_helpers import study_settings

# Where SLURM's client tools are installed (CI), the SLURM executor plugin asks `scontrol show
# config` each time Snakemake starts, which waits up to 10 s when no controller answers. Only the
# SLURM test starts a cluster, and it points its commands at that cluster's config; every other
# test's SLURM client reads this empty config and gives up at once.
os.environ["SLURM_CONF"] = os.devnull


@pytest.fixture
def tiny_archive(tmp_path: Path) -> tuple[Path, str]:
    """(path, md5) of a 200-train / 50-test image archive in the official layout and encoding."""
    return write_cifar_archive(tmp_path / "tiny", train_per_class=20, test_per_class=5)


@pytest.fixture(scope="session")
def learnable(tmp_path_factory) -> Cifar:
    """A small archive, read, whose classes a CNN can tell apart in a few epochs."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("learnable"), 40, 10)
    return read_archive(archive, expect_train=400, expect_test=100)


class FakeNvml:
    """Stands in for the `pynvml` module: one H200, its energy counter set by the test.
    Names come back as bytes, as older bindings return them."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
    UUID = "GPU-5ee2b3f6-0000-4000-8000-000000000001"

    def __init__(self):
        self.energy_mj = 7_000_000

    def nvmlInit(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return b"570.86.15"

    def nvmlSystemGetCudaDriverVersion_v2(self):
        return 12080

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"handle{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid != self.UUID:
            raise LookupError(uuid)
        return "handle0"

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(total=143_771 << 20)

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return (9, 0)

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")  # a query the GPU does not answer

    def nvmlDeviceGetMaxClockInfo(self, handle, clock):
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 3201}[clock]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy_mj


@pytest.fixture
def fake_nvml(monkeypatch) -> FakeNvml:
    """NVML answering as for one GPU, in place of the machine's (absent here)."""
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml.library.cache_clear()
    yield fake
    nvml.library.cache_clear()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """One real metrics document, whose replicates tests replace (training_helpers.like)."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("a"), 10, 4)
    data = read_archive(archive, expect_train=100, expect_test=40)
    settings = study_settings(workers=0, batch_size=20, epochs=1)
    return in_process.run_variant("cpu", data, settings, gpu_fallback="cpu", threads=1)
