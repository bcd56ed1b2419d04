"""The machine's fingerprint: each probe on a faked system tree or a faked NVML, and the
fingerprint in every metrics document and the CSV."""

import copy
import sys

import pytest
import torch

from cifarbench import fingerprint, nvml, table, train
from cifarbench.columns import MACHINE, MACHINE_ID
from cifarbench.document import check_metrics, combine
from cifarbench.settings import Settings
from workflow_helpers import study_settings


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("150000 100000\n", 1.5), ("max 100000\n", None)]
)
def test_cgroup_v2_cpu_quota_is_read_from_the_process_cgroup(tmp_path, cpu_max, expected):
    write(tmp_path / "proc/self/cgroup", "0::/system.slice/job_7/step_0\n")
    write(tmp_path / "sys/fs/cgroup/system.slice/job_7/step_0/cpu.max", cpu_max)
    write(tmp_path / "sys/fs/cgroup/cpu.max", "800000 100000\n")  # the parent's: not ours
    assert fingerprint.cgroup_cpu_quota(tmp_path) == expected


@pytest.mark.parametrize(("quota", "expected"), [("200000", 2.0), ("-1", None)])
def test_cgroup_v1_cpu_quota_is_read_from_the_cpu_controller(tmp_path, quota, expected):
    write(tmp_path / "proc/self/cgroup", "5:memory:/x\n4:cpu,cpuacct:/slurm/job_1\n0::/\n")
    folder = tmp_path / "sys/fs/cgroup/cpu/slurm/job_1"
    write(folder / "cpu.cfs_quota_us", quota)
    write(folder / "cpu.cfs_period_us", "100000")
    assert fingerprint.cgroup_cpu_quota(tmp_path) == expected


def test_no_cgroup_files_is_no_quota(tmp_path):
    assert fingerprint.cgroup_cpu_quota(tmp_path) is None


def test_usable_cores_are_the_affinity_capped_by_the_quota(tmp_path):
    write(tmp_path / "proc/self/cgroup", "0::/\n")
    write(tmp_path / "sys/fs/cgroup/cpu.max", "50000 100000\n")  # half a CPU
    write(tmp_path / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n")
    cpu = fingerprint.cpu(tmp_path)
    assert (cpu["cgroup_quota_cpus"], cpu["usable_cores"]) == (0.5, 1)
    assert cpu["governor"] == "performance"
    assert fingerprint.cpu(tmp_path / "elsewhere")["governor"] is None


@pytest.mark.parametrize(
    ("files", "environ", "expected"),
    [
        ({".dockerenv": ""}, {}, "docker"),
        ({"run/.containerenv": ""}, {}, "podman"),
        ({}, {"APPTAINER_CONTAINER": "/images/study.sif"}, "apptainer"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "kubernetes"),
        ({}, {"container": "lxc"}, "lxc"),
        ({"proc/1/cgroup": "0::/kubepods/burstable/pod1\n"}, {}, "kubepods"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {}, None),
    ],
)
def test_a_container_is_named_by_the_marks_it_leaves(tmp_path, files, environ, expected):
    for name, text in files.items():
        write(tmp_path / name, text)
    assert fingerprint.container(tmp_path, environ) == expected


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("5.15.153.1-microsoft-standard-WSL2\n", True),
        ("4.4.0-19041-Microsoft\n", False),  # WSL1: no CUDA there at all
        ("6.8.0-45-generic\n", False),
    ],
)
def test_wsl2_is_told_by_its_kernel(tmp_path, release, expected):
    write(tmp_path / "proc/sys/kernel/osrelease", release)
    assert fingerprint.is_wsl2(tmp_path) is expected


def test_nvml_describes_every_gpu_and_the_driver(fake_nvml):
    [gpu] = nvml.gpus()
    assert gpu == {
        "name": "NVIDIA H200",
        "compute_capability": "9.0",
        "memory_mb": 143_771,
        "power_limit_w": None,  # not supported by this GPU: absent, not an error
        "sm_clock_max_mhz": 1980,
        "memory_clock_max_mhz": 3201,
    }
    assert nvml.driver() == {"version": "570.86.15", "cuda": "12.8"}


@pytest.mark.parametrize("broken", ["not installed", "no driver"])
def test_without_nvml_the_gpu_parts_are_absent_never_an_error(monkeypatch, broken):
    if broken == "not installed":
        monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    else:

        class NoDriver:
            def nvmlInit(self):
                raise OSError("NVML Shared Library Not Found")

        monkeypatch.setitem(sys.modules, "pynvml", NoDriver())
    nvml.library.cache_clear()
    try:
        assert nvml.gpus() == []
        assert nvml.driver() == {"version": None, "cuda": None}
        assert nvml.device_handle(torch.device("cuda", 0)) is None
    finally:
        nvml.library.cache_clear()


def test_the_machine_id_is_the_hardware_alone(fake_nvml):
    machine = fingerprint.machine("laptop")
    assert machine["name"] == "laptop" and len(machine["id"]) == 12
    upgraded = copy.deepcopy(machine)
    upgraded["os"]["kernel"], upgraded["nvidia_driver"]["version"] = "6.9.0", "580.1"
    upgraded["pytorch"]["version"], upgraded["python"] = "2.9.0+cu128", "3.13.1"
    assert fingerprint.machine_id(upgraded) == machine["id"]
    other_gpu = copy.deepcopy(machine)
    other_gpu["gpus"][0]["name"] = "NVIDIA A100-SXM4-80GB"
    assert fingerprint.machine_id(other_gpu) != machine["id"]


def test_the_fingerprint_is_in_every_document_and_the_csv(learnable, tmp_path):
    settings = study_settings(workers=0, batch_size=50, epochs=1)
    record = train.run_seed(
        "cpu", learnable, Settings.from_dict(settings), gpu_fallback="cpu", threads=1, seed=0
    )
    machine = record["environment"]["machine"]
    assert machine == {**machine, "host": machine["name"], "python": sys.version.split()[0]}
    assert machine["cpu"]["usable_cores"] >= 1 and machine["memory_gb"] > 0
    assert machine["pytorch"]["version"] == torch.__version__
    named = check_metrics(combine([record], machine="a100 node"), "combine")
    assert named["environment"]["machine"] == {**machine, "name": "a100 node"}
    for document, name in [(named, "a100 node"), (combine([record]), machine["host"])]:
        row = table.build_table([document], {"cpu": "cpu"}).iloc[0]
        assert (row[MACHINE.header], row[MACHINE_ID.header]) == (name, machine["id"])
