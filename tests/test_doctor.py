"""`cifarbench doctor`: each known CUDA failure (cifarbench.cuda_causes) diagnosed from faked
probes, with its fix; the probes on a faked system tree; a GPU variant's fallback reason
naming the same cause; the disk and data checks; the command."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cifarbench import cli, cuda_causes, doctor, in_process, table
from cifarbench.atomic import FREE_MARGIN_BYTES
from cifarbench.cuda_causes import CudaProbes
from cifarbench.runtime import resolve_device
from workflow_helpers import REPO, study_settings

# A working CUDA machine: one GPU, PyTorch's CUDA 11.8 build, a driver for up to CUDA 12.4.
WORKING = CudaProbes(
    torch_version="2.4.0+cu118",
    torch_cuda="11.8",
    cuda_available=True,
    torch_gpus=1,
    pci_gpus=1,
    nvml_gpus=1,
    driver_loaded=True,
    device_nodes=True,
    driver_cuda="12.4",
    wsl2=False,
    wsl_driver_libs=False,
    visible_devices=None,
)
NO_DRIVER = {"nvml_gpus": 0, "driver_loaded": False, "device_nodes": False, "driver_cuda": None}
BROKEN = {
    "a CPU-only build on a GPU machine": (
        {"torch_version": "2.4.0+cpu", "torch_cuda": None},
        "PyTorch 2.4.0+cpu is a CPU-only build, but this machine has an NVIDIA GPU",
        "--index-url https://download.pytorch.org/whl/cu",
    ),
    "a CUDA runtime newer than the driver": (
        {"torch_version": "2.6.0+cu126", "torch_cuda": "12.6", "driver_cuda": "12.2"},
        "PyTorch is built for CUDA 12.6, newer than the CUDA 12.2 the NVIDIA driver supports",
        "update the NVIDIA driver, or install a PyTorch built for CUDA 12.2 or older",
    ),
    "no driver loaded": (
        NO_DRIVER,
        "an NVIDIA GPU is on the PCI bus but no NVIDIA driver is loaded (no /proc/driver/nvidia)",
        "install the NVIDIA driver",
    ),
    "no device nodes": (
        {"device_nodes": False},
        "the NVIDIA driver is loaded but /dev/nvidia0 or /dev/nvidiactl is missing",
        "docker run --gpus all",
    ),
    "WSL2 without the Windows driver's libraries": (
        {**NO_DRIVER, "pci_gpus": 0, "wsl2": True},
        "WSL2 without the Windows NVIDIA driver's libraries (no /usr/lib/wsl/lib/libcuda.so)",
        "install the NVIDIA driver on Windows, not inside Linux",
    ),
    "CUDA_VISIBLE_DEVICES hiding the GPU": (
        {"visible_devices": "1"},  # the second GPU, on a one-GPU machine
        "CUDA_VISIBLE_DEVICES='1' hides every GPU from PyTorch",
        "unset CUDA_VISIBLE_DEVICES",
    ),
    "no GPU at all": (
        {**NO_DRIVER, "pci_gpus": 0},
        "no NVIDIA GPU on this machine",
        "none needed for the CPU variants",
    ),
    "none of the known causes": (
        {},
        "PyTorch sees no GPU, for none of the causes the doctor knows",
        "torch.cuda.init()",
    ),
}


def broken(changes: dict) -> CudaProbes:
    return dataclasses.replace(WORKING, cuda_available=False, torch_gpus=0, **changes)


@pytest.mark.parametrize("failure", BROKEN)
def test_each_known_failure_is_named_alone_with_its_fix(failure):
    changes, cause, fix = BROKEN[failure]
    [(named, told)] = cuda_causes.causes(broken(changes))
    assert named == cause and fix in told


def test_every_cause_that_applies_is_listed_the_likeliest_first():
    both = broken({"torch_version": "2.4.0+cpu", "torch_cuda": None, "visible_devices": ""})
    assert [cause for cause, _ in cuda_causes.causes(both)] == [
        "PyTorch 2.4.0+cpu is a CPU-only build, but this machine has an NVIDIA GPU",
        "CUDA_VISIBLE_DEVICES='' hides every GPU from PyTorch",
    ]


@pytest.mark.parametrize(
    ("visible", "gpus", "hides"),
    [
        ("", 1, True),
        ("-1", 2, True),
        ("NoDevFiles", 1, True),
        ("2,0", 2, True),  # CUDA stops at the first entry that names no GPU
        ("0", 1, False),
        ("1,0", 2, False),
        ("GPU-5ee2b3f6", 1, False),
        ("MIG-1", 1, False),
    ],
)
def test_cuda_visible_devices_hides_the_gpus_from_its_first_bad_entry(visible, gpus, hides):
    assert cuda_causes.hides_every_gpu(visible, gpus) is hides


@pytest.mark.parametrize(
    ("gpu_fallback", "level", "consequence"),
    [
        ("cpu", "warning", "GPU variants will run on the CPU, labelled as such"),
        ("skip", "warning", "GPU variants will be skipped"),
        ("error", "error", "GPU variants will stop the run"),
    ],
)
def test_falling_back_is_a_warning_unless_the_config_makes_it_an_error(
    gpu_fallback, level, consequence
):
    findings = doctor.cuda_findings(broken(BROKEN["no GPU at all"][0]), gpu_fallback)
    assert [(f.level, f.cause) for f in findings] == [
        (level, f"{consequence} (gpu_fallback: {gpu_fallback})"),
        (level, "no NVIDIA GPU on this machine"),
    ]
    assert doctor.cuda_findings(WORKING, gpu_fallback) == [
        doctor.Finding("ok", "PyTorch sees 1 GPU(s): GPU variants run there")
    ]


def test_the_probes_read_the_system_tree(tmp_path, monkeypatch):
    """An NVIDIA GPU and its audio function on the PCI bus, a driver without /dev/nvidia0,
    a WSL2 kernel with the Windows driver's libcuda; CUDA_VISIBLE_DEVICES=-1."""
    for address, vendor, kind in [
        ("0000:01:00.0", "0x10de", "0x030200"),  # the GPU (3D controller)
        ("0000:01:00.1", "0x10de", "0x040300"),  # its HDMI audio: not a GPU
        ("0000:00:02.0", "0x8086", "0x030000"),  # an Intel GPU: not NVIDIA's
    ]:
        device = tmp_path / "sys/bus/pci/devices" / address
        device.mkdir(parents=True)
        (device / "vendor").write_text(f"{vendor}\n")
        (device / "class").write_text(f"{kind}\n")
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/nvidiactl").touch()
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("5.15.153.1-microsoft-standard-WSL2\n")
    (tmp_path / cuda_causes.WSL_LIBCUDA).parent.mkdir(parents=True)
    (tmp_path / cuda_causes.WSL_LIBCUDA).touch()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    probes = cuda_causes.probe_cuda(tmp_path, {"CUDA_VISIBLE_DEVICES": "-1"})
    assert (probes.pci_gpus, probes.driver_loaded, probes.device_nodes) == (1, True, False)
    assert (probes.wsl2, probes.wsl_driver_libs) == (True, True)
    assert (probes.visible_devices, probes.cuda_available) == ("-1", False)
    assert (probes.torch_cuda, probes.torch_version) == (torch.version.cuda, torch.__version__)
    empty = cuda_causes.probe_cuda(tmp_path / "empty", {})
    assert (empty.pci_gpus, empty.driver_loaded, empty.wsl2, empty.visible_devices) == (
        0,
        False,
        False,
        None,
    )


def test_a_gpu_variants_fallback_reason_names_the_doctors_cause(learnable, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_only = broken(BROKEN["a CPU-only build on a GPU machine"][0])
    monkeypatch.setattr(cuda_causes, "probe_cuda", lambda: cpu_only)
    cause = "PyTorch 2.4.0+cpu is a CPU-only build, but this machine has an NVIDIA GPU"
    assert resolve_device("cuda", "cpu") == (
        torch.device("cpu"),
        f"{cause}; ran on the CPU (gpu_fallback: cpu)",
    )
    assert resolve_device("cuda", "skip") == (None, f"{cause}; skipped (gpu_fallback: skip)")
    settings = study_settings(device="cuda", workers=0, batch_size=50, epochs=1)
    document = in_process.run_variant("g-initial", learnable, settings, "cpu", threads=1)
    assert document["reason"].startswith(cause)
    assert (
        table.build_table([document], {"g-initial": "g-initial"})["Reason"][0] == document["reason"]
    )


def test_the_disk_needs_room_for_what_is_not_there_yet(tmp_path):
    data = {"train_size": 50_000, "test_size": 10_000}
    resources = tmp_path / "resources"  # not made yet: its disk is its parent's
    free, needed = doctor.probe_disk(resources, data)
    assert free > 0
    per_image = doctor.ARCHIVE_BYTES_PER_IMAGE + doctor.CACHE_BYTES_PER_IMAGE
    assert needed == FREE_MARGIN_BYTES + 60_000 * per_image
    resources.mkdir()
    (resources / "cifar-10-python.tar.gz").touch()
    assert doctor.probe_disk(resources, data)[1] == FREE_MARGIN_BYTES + 60_000 * 3080
    (resources / "cifar10.npz").touch()
    assert doctor.probe_disk(resources, data)[1] == FREE_MARGIN_BYTES


def test_too_little_disk_is_an_error_naming_the_folder_and_the_sizes():
    short = doctor.disk_finding(Path("resources"), free=100 << 20, needed=400 << 20)
    assert short.level == "error"
    assert short.cause == "resources: 100 MB free, the download and the cache need 400 MB"
    assert doctor.disk_finding(Path("resources"), 500 << 20, 400 << 20).level == "ok"


def test_an_unreachable_url_without_a_local_copy_is_an_error(tmp_path):
    refused = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # the discard port: nothing listens
    problem = doctor.probe_data(refused, tmp_path / "cifar-10-python.tar.gz")
    assert problem.startswith(f"cannot reach {refused}: ")
    finding = doctor.data_finding(refused, problem)
    assert finding.level == "error" and finding.cause.endswith(", and no copy in resources/")
    assert "point data.url at a local copy with --configfile" in finding.fix
    assert doctor.data_finding(refused, None).level == "ok"


def test_a_local_copy_or_an_existing_file_is_enough(tmp_path):
    archive = tmp_path / "cifar.tar.gz"
    archive.touch()
    missing = tmp_path / "nowhere.tar.gz"
    assert doctor.probe_data("http://127.0.0.1:9/x", archive) is None  # already downloaded
    assert doctor.probe_data(archive.as_uri(), missing) is None
    assert doctor.probe_data(str(archive), missing) is None
    assert doctor.probe_data(missing.as_uri(), missing) == f"{missing}: no such file"


@pytest.fixture
def workflow_folder(tmp_path, monkeypatch) -> Path:
    """The shipped config.yaml with a local copy of the data, and a machine without a GPU."""
    (tmp_path / "archive.tar.gz").touch()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["data"]["url"] = (tmp_path / "archive.tar.gz").as_uri()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    no_gpu = broken(BROKEN["no GPU at all"][0])
    monkeypatch.setattr(cuda_causes, "probe_cuda", lambda: no_gpu)
    return tmp_path


def test_doctor_prints_the_fingerprint_and_passes_where_the_study_can_run(workflow_folder, capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for part in ("machine  ", "cpu      ", "memory   ", "os       ", "pytorch  ", "energy   "):
        assert f"\n{part}" in f"\n{out}"
    assert "warning: GPU variants will run on the CPU, labelled as such" in out
    assert "warning: no NVIDIA GPU on this machine" in out
    assert out.rstrip().endswith("the study can run here")


def test_doctor_fails_where_the_study_cannot_run(workflow_folder, capsys):
    (workflow_folder / "offline.yaml").write_text(
        "data: {url: 'http://127.0.0.1:9/cifar.tar.gz'}\ngpu_fallback: error\nmachine: lab\n"
    )
    assert cli.main(["doctor", "--configfile", "offline.yaml"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("machine  lab (id ")
    assert "\nerror: GPU variants will stop the run (gpu_fallback: error)" in out
    assert "\nerror: cannot reach http://127.0.0.1:9/cifar.tar.gz: " in out
    assert out.rstrip().endswith("the study cannot run here yet")


def test_a_missing_or_broken_config_is_one_line(workflow_folder, capsys):
    assert doctor.main(["--configfile", "absent.yaml"]) == 1
    assert capsys.readouterr().err.startswith("cifarbench error: absent.yaml: cannot read")
    (workflow_folder / "typo.yaml").write_text("gpu_fallback: cpu-please\n")
    assert doctor.main(["--configfile", "typo.yaml"]) == 1
    assert capsys.readouterr().err.startswith("cifarbench error: config: gpu_fallback: ")


def test_the_doctor_runs_as_a_module_outside_the_workflow(tmp_path):
    """`python -m cifarbench.doctor`, what the `cifarbench doctor` console script runs."""
    done = subprocess.run(
        [sys.executable, "-m", "cifarbench.doctor"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("machine  ")
    assert "warning: no config.yaml here: data source and disk not checked" in done.stdout


def test_the_command_names_its_subcommands(capsys):
    assert cli.main([]) == 2
    assert "usage: cifarbench {doctor}" in capsys.readouterr().err
