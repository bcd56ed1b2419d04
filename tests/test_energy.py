"""Energy during the timed loop: RAPL on a faked powercap tree, NVML on a faked counter, and
an empty cell with the reason, never 0, where the machine exposes neither."""

import itertools
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from cifarbench import energy, in_process, loop, table
from cifarbench.columns import ENERGY, ENERGY_PER_IMAGE
from cifarbench.energy import EnergyMeter
from cifarbench.settings import Settings
from workflow_helpers import study_settings


def rapl_zone(powercap: Path, zone: str, name: str, energy_uj: int, range_uj: int = 10**12):
    folder = powercap / zone
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{name}\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return folder


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_sums_the_cpu_packages_over_the_loop_and_survives_a_wrap(tmp_path):
    package_0 = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    package_1 = rapl_zone(tmp_path, "intel-rapl:1", "package-1", 262_000_000, 262_143_328)
    core = rapl_zone(tmp_path, "intel-rapl:0:0", "core", 5)  # inside package 0: not added
    psys = rapl_zone(tmp_path, "intel-rapl:2", "psys", 5)  # the platform: not the CPU's
    with EnergyMeter(torch.device("cpu"), tmp_path) as meter:
        set_energy(package_0, 4_000_000)  # +3 J
        set_energy(package_1, 1_856_672)  # wrapped: +143,328 + 1,856,672 uJ = +2 J
        set_energy(core, 10**9)
        set_energy(psys, 10**9)
    assert meter.reading(images=1000) == {
        "joules": pytest.approx(5.0),
        "per_image_mj": pytest.approx(5.0),
        "source": "rapl",
        "reason": None,
    }


def test_nvml_reads_the_gpus_own_counter(fake_nvml, monkeypatch):
    uuid = fake_nvml.UUID.removeprefix("GPU-")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(uuid=uuid))
    with EnergyMeter(torch.device("cuda", 0)) as meter:
        fake_nvml.energy_mj += 45_500  # millijoules
    assert meter.reading(images=500) == {
        "joules": pytest.approx(45.5),
        "per_image_mj": pytest.approx(91.0),
        "source": "nvml",
        "reason": None,
    }


def test_a_gpu_nvml_cannot_find_has_no_reading(fake_nvml, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(uuid="x"))
    with EnergyMeter(torch.device("cuda", 0)) as meter:
        fake_nvml.energy_mj += 45_500
    assert meter.reading(500)["joules"] is None
    assert "NVML gives no energy counter" in meter.reading(500)["reason"]


def unreadable(self):
    raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize(
    ("machine", "reason"),
    [
        ("no powercap", "no RAPL package counters in"),
        ("root-only counters", "RAPL counters not readable ([Errno 13] Permission denied)"),
        ("a counter that did not move", "the rapl counter did not advance during training"),
    ],
)
def test_no_reading_is_none_with_the_reason_never_0(tmp_path, monkeypatch, machine, reason):
    if machine != "no powercap":
        rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    if machine == "root-only counters":
        monkeypatch.setattr(energy.RaplCounter, "read", unreadable)
    with EnergyMeter(torch.device("cpu"), tmp_path) as meter:
        pass
    reading = meter.reading(images=1000)
    assert (reading["joules"], reading["per_image_mj"], reading["source"]) == (None, None, None)
    assert reading["reason"].startswith(reason)


def test_the_meter_spans_the_timed_loop_into_the_json_and_the_csv(learnable, monkeypatch):
    """A counter that steps 1 J at each read: the training loop reads it once as its clock
    starts and once as it stops (evaluated at the end, off the meter). Without counters, the
    CSV's cells are empty."""
    steps = itertools.count()
    monkeypatch.setattr(energy, "rapl_packages", lambda powercap: [Path("/package-0")])
    monkeypatch.setattr(energy.RaplCounter, "read", lambda self: [next(steps) * 1_000_000])
    settings = study_settings(workers=0, batch_size=50, epochs=1, evaluate="end")
    replicate = loop.train_replicate(learnable, Settings(**settings), torch.device("cpu"), 0)
    assert replicate["energy"] == {
        "joules": 1.0,
        "per_image_mj": pytest.approx(1000 / 400),
        "source": "rapl",
        "reason": None,
    }
    measured = in_process.run_variant("cpu", learnable, settings, "cpu", threads=1)
    monkeypatch.setattr(energy, "rapl_packages", lambda powercap: [])
    unmeasured = in_process.run_variant("cpu-l1-grouped", learnable, settings, "cpu", threads=1)
    assert unmeasured["replicates"][0]["energy"]["reason"].startswith("no RAPL package counters")
    baselines = {"cpu": "cpu", "cpu-l1-grouped": "cpu"}
    rows = table.build_table([measured, unmeasured], baselines).set_index("Optimization Technique")
    assert rows.loc["cpu", ENERGY.header] == 1.0
    assert rows.loc["cpu", ENERGY_PER_IMAGE.header] == pytest.approx(2.5)
    assert pd.isna(rows.loc["cpu-l1-grouped", ENERGY.header])
    assert pd.isna(rows.loc["cpu-l1-grouped", ENERGY_PER_IMAGE.header])


def test_the_evaluation_after_each_epoch_is_off_the_meter(learnable, monkeypatch):
    """A counter that steps 1 J at each read: opened (one read), then 2 epochs read it at the
    start, around each epoch's evaluation and at the end (5 J from start to end); the 1 J of
    each evaluation is taken out, leaving 3 J."""
    steps = itertools.count()
    monkeypatch.setattr(energy, "rapl_packages", lambda powercap: [Path("/package-0")])
    monkeypatch.setattr(energy.RaplCounter, "read", lambda self: [next(steps) * 1_000_000])
    settings = study_settings(workers=0, batch_size=50, epochs=2, evaluate="every_epoch")
    replicate = loop.train_replicate(learnable, Settings(**settings), torch.device("cpu"), 0)
    assert (replicate["energy"]["joules"], next(steps)) == (3.0, 7)
