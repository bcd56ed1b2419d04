"""Energy the training device used during the timed loop, where its hardware counts it.

A GPU run reads the GPU's own energy counter (NVML); a CPU run reads the CPU packages' RAPL
counters (Linux powercap). Where the machine exposes neither, as most VMs do, the reading is
None with the reason, never 0.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from cifarbench import nvml

POWERCAP = Path("/sys/class/powercap")


@dataclass
class RaplCounter:
    """The CPU packages' energy counters (intel-rapl:N, also on AMD), in microjoules."""

    zones: list[Path]
    source = "rapl"

    def read(self) -> list[int]:
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def joules(self, start: list[int], end: list[int]) -> float:
        total = 0
        for zone, before, after in zip(self.zones, start, end, strict=True):
            if after < before:  # the counter wrapped around (every few minutes under load)
                after += int((zone / "max_energy_range_uj").read_text())
            total += after - before
        return total / 1e6


@dataclass
class NvmlCounter:
    """The GPU's total-energy counter, in millijoules."""

    handle: object
    source = "nvml"

    def read(self) -> list[int]:
        reading = nvml.total_energy_mj(self.handle)
        if reading is None:
            raise OSError("NVML stopped answering")
        return [reading]

    def joules(self, start: list[int], end: list[int]) -> float:
        return (end[0] - start[0]) / 1e3


def rapl_packages(powercap: Path = POWERCAP) -> list[Path]:
    """The package zones (`intel-rapl:0`, not its sub-zones `intel-rapl:0:0`)."""
    zones = sorted(powercap.glob("intel-rapl:*"))
    return [
        zone for zone in zones if zone.name.count(":") == 1 and _name(zone).startswith("package")
    ]


def _name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return ""


class NoCounter(Exception):
    """The machine exposes no energy counter for the device; the message says why."""


def open_counter(device: torch.device, powercap: Path | None = None) -> RaplCounter | NvmlCounter:
    """The energy counter for `device` (RAPL's under `powercap`, by default the system's)."""
    if device.type == "cuda":
        handle = nvml.device_handle(device)
        if handle is None or nvml.total_energy_mj(handle) is None:
            raise NoCounter(
                "NVML gives no energy counter for this GPU (needs nvidia-ml-py, Volta or newer)"
            )
        return NvmlCounter(handle)
    powercap = powercap or POWERCAP
    zones = rapl_packages(powercap)
    if not zones:
        raise NoCounter(f"no RAPL package counters in {powercap} (most VMs expose none)")
    try:
        RaplCounter(zones).read()
    except (OSError, ValueError) as error:
        raise NoCounter(
            f"RAPL counters not readable ({error}); root only since Linux 5.10"
        ) from error
    return RaplCounter(zones)


class EnergyMeter:
    """Reads the device's energy counter on entry and on exit: the energy between, less the
    energy of the spans spent in `off()` (evaluation, which is off the training clock)."""

    def __init__(self, device: torch.device, powercap: Path | None = None):
        self.device, self.powercap = device, powercap
        self.counter: RaplCounter | NvmlCounter | None = None
        self.start: list[int] = []
        self.excluded_j = 0.0
        self.joules, self.source, self.reason = None, None, None

    def __enter__(self) -> "EnergyMeter":
        try:
            self.counter = open_counter(self.device, self.powercap)
        except NoCounter as missing:
            self.reason = str(missing)
        else:
            self.start = self.counter.read()
        return self

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        """A span whose energy is not counted. A counter that cannot be read around it leaves
        no reading at all (its energy could not be taken out), with the reason."""
        before = self._read_or_drop(lambda counter: counter.read())
        yield
        if before is not None:
            self.excluded_j += (
                self._read_or_drop(lambda counter: counter.joules(before, counter.read())) or 0.0
            )

    def _read_or_drop(self, read):
        """`read(counter)`, or None, dropping the counter with the reason, when it fails."""
        if self.counter is None:
            return None
        try:
            return read(self.counter)
        except (OSError, ValueError) as error:
            self.reason = f"the {self.counter.source} counter could not be read ({error})"
            self.counter = None
            return None

    def __exit__(self, *exc_info) -> None:
        if self.counter is None:
            return
        source = self.counter.source
        try:
            joules = self.counter.joules(self.start, self.counter.read()) - self.excluded_j
        except (OSError, ValueError) as error:
            self.reason = f"the {source} counter could not be read again ({error})"
            return
        if joules <= 0:  # a run shorter than the counter's update interval
            self.reason = f"the {source} counter did not advance during training"
            return
        self.joules, self.source = joules, source

    def reading(self, images: int) -> dict:
        """The JSON's `energy`: joules and millijoules per training image, or the reason."""
        per_image = self.joules * 1e3 / images if self.joules is not None and images else None
        return {
            "joules": self.joules,
            "per_image_mj": per_image,
            "source": self.source,
            "reason": self.reason,
        }
