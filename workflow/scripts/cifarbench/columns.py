"""The results table's columns, defined once: header text (with its unit), and where each
value comes from; and the study's own numbers that sit beside ours. table.py builds the table
from these; the figures read it through them."""

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cifarbench import stats
from cifarbench.document import replicate_values
from cifarbench.targets import target_key

# The study's numbers, as its report gives them: variant -> (training time s, accuracy %,
# memory MB); None where the report gives none.
STUDY_RESULTS = {
    "cpu": (293.87, 62.07, 662.47),
    "g-initial": (404.15, 61.02, 994.33),
    "g-torch.cuda.amp": (526.15, 62.47, 1062.43),
    "g-b32-w4": (66.44, 60.39, 977.11),
    "g-b16-w4": (113.21, 64.91, 988.84),
    "g-b16w8": (109.48, 62.77, 994.29),
    "g-bn": (None, 51.08, None),
    "g-lr": (None, 57.38, None),
}
STUDY_MACHINE = "the study's laptop GPU (WSL2)"
# Its `cpu` row ran on the same laptop's CPU; every row of its table trained 10 epochs.
STUDY_CPU_MACHINE = "the study's laptop CPU (WSL2)"
STUDY_EPOCHS = 10


def study_machine(variant: str) -> str:
    return STUDY_CPU_MACHINE if variant == "cpu" else STUDY_MACHINE


# The study's "compared to CPU": every row's speedup over the `cpu` variant, whatever its
# baseline.
CPU_BASELINE = "cpu"


@dataclass(frozen=True)
class Column:
    header: str  # the CSV header: the study's five verbatim, the unit in parentheses
    value: Callable[[dict], Any] | None  # from one metrics document; None: from the whole table
    measured: bool = False  # a measurement: written to 2 decimals, as the study wrote them


def _mean(metric: str) -> Callable[[dict], Any]:
    return lambda result: result["summary"][metric]["mean"]


def _std(metric: str) -> Callable[[dict], Any]:
    return lambda result: result["summary"][metric]["std"]


def _setting(name: str) -> Callable[[dict], Any]:
    return lambda result: result["settings"][name]


def _interval(metric: str, end: int) -> Callable[[dict], Any]:
    """One end of the 95% confidence interval of a metric's mean over the replicates."""
    return lambda result: stats.mean_interval(replicate_values(result, metric))[end]


def _time_variation(result: dict) -> float | None:
    cv = stats.variation(replicate_values(result, "training_time_s"))
    return None if cv is None else 100 * cv


def _noisy(result: dict) -> bool:
    return stats.is_noisy(replicate_values(result, "training_time_s"))


def _robust(summary: Callable[[list[float]], float | None]) -> Callable[[dict], Any]:
    """A robust summary (median, min, max) of the replicates' training times."""
    return lambda result: summary(replicate_values(result, "training_time_s"))


def _loads(result: dict) -> list[dict]:
    """Each finished replicate's machine-load record (cifarbench.load); null before schema 5."""
    return [r["machine_load"] for r in result["replicates"] if r.get("machine_load")]


def _load_mean(key: str) -> Callable[[dict], Any]:
    def value(result: dict) -> float | None:
        values = [load[key] for load in _loads(result) if load[key] is not None]
        return sum(values) / len(values) if values else None

    return value


def _machine_busy(result: dict) -> bool | None:
    """Whether any replicate ran beside other work (load.BUSY_CORES); None: not recorded."""
    flags = [load["busy"] for load in _loads(result) if load["busy"] is not None]
    return any(flags) if flags else None


def _study(index: int) -> Callable[[dict], Any]:
    def value(result: dict) -> float | None:
        row = STUDY_RESULTS.get(result["variant"])
        return row[index] if row else None

    return value


def _first_replicate(key: str) -> Callable[[dict], Any]:
    return lambda result: result["replicates"][0][key] if result["replicates"] else None


def _workers(result: dict) -> int:
    """Worker processes the variant really used: the tensor loader has none."""
    uses_workers = result["settings"]["loader"] != "tensor"
    return result["settings"]["workers"] if uses_workers else 0


VARIANT = Column("Optimization Technique", lambda r: r["variant"])
TIME = Column("Training Time (seconds)", _mean("training_time_s"), measured=True)
ACCURACY = Column("Accuracy (%)", _mean("accuracy_pct"), measured=True)
MEMORY = Column("Memory Usage (MB)", _mean("memory_mb"), measured=True)
EPOCHS = Column("Epochs", lambda r: r["epochs"])
TRAIN_IMAGES = Column("Train Images", _first_replicate("train_images"))
TEST_IMAGES = Column("Test Images", _first_replicate("test_images"))
DEVICE_NAME = Column("Device Name", lambda r: r["device"]["name"])
MACHINE = Column("Machine", lambda r: r["environment"]["machine"]["name"])
MACHINE_ID = Column("Machine ID", lambda r: r["environment"]["machine"]["id"])
SETTINGS_HASH = Column("Settings Hash", lambda r: r["settings_hash"])
ENERGY = Column("Energy (J)", _mean("energy_j"), measured=True)
ENERGY_PER_IMAGE = Column("Energy per Image (mJ)", _mean("energy_per_image_mj"), measured=True)
STATUS = Column("Status", lambda r: r["status"])
DEVICE_USED = Column("Device Used", lambda r: r["device"]["used"] or "none")
FALLBACK = Column("Fallback", lambda r: r["device"]["fallback"])
SPEEDUP_VS_CPU = Column(f"Speedup vs {CPU_BASELINE}", None, measured=True)
BASELINE = Column("Baseline", None)
SPEEDUP_VS_BASELINE = Column("Speedup vs Baseline", None, measured=True)
TIME_P = Column("Training Time p vs Baseline", None)
ACCURACY_P = Column("Accuracy p vs Baseline", None)
TIME_VERDICT = Column("Training Time vs Baseline", None)
ACCURACY_VERDICT = Column("Accuracy vs Baseline", None)
NOISY = Column("Noisy", _noisy)
REPLICATES = Column("Replicates", lambda r: r["summary"]["n"])
TIME_STD = Column("Training Time Std (seconds)", _std("training_time_s"), measured=True)
ACCURACY_STD = Column("Accuracy Std (%)", _std("accuracy_pct"), measured=True)
MEMORY_STD = Column("Memory Usage Std (MB)", _std("memory_mb"), measured=True)
TIME_LOW = Column("Training Time CI95 Low (seconds)", _interval("training_time_s", 0), True)
TIME_HIGH = Column("Training Time CI95 High (seconds)", _interval("training_time_s", 1), True)
ACCURACY_LOW = Column("Accuracy CI95 Low (%)", _interval("accuracy_pct", 0), measured=True)
ACCURACY_HIGH = Column("Accuracy CI95 High (%)", _interval("accuracy_pct", 1), measured=True)
# Robust statistics and the machine's load (cifarbench.load).
TIME_MEDIAN = Column("Training Time Median (seconds)", _robust(stats.median), measured=True)
TIME_MIN = Column("Training Time Min (seconds)", _robust(stats.smallest), measured=True)
TIME_MAX = Column("Training Time Max (seconds)", _robust(stats.largest), measured=True)
MACHINE_BUSY = Column("Machine Busy", _machine_busy)
OTHER_CPU = Column("Other CPU (cores)", _load_mean("other_cpu_cores"), measured=True)
# Each ladder rung against the rung below it (config ladders; table.py fills these).
RUNG_BELOW = Column("Rung Below", None)
SPEEDUP_VS_BELOW = Column("Speedup vs Rung Below", None, measured=True)
SPEEDUP_VS_BELOW_LOW = Column("Speedup vs Rung Below CI95 Low", None, measured=True)
SPEEDUP_VS_BELOW_HIGH = Column("Speedup vs Rung Below CI95 High", None, measured=True)
TIME_P_VS_BELOW = Column("Training Time p vs Rung Below", None)
TIME_VS_BELOW = Column("Training Time vs Rung Below", None)
ACCURACY_VS_BELOW = Column("Accuracy vs Rung Below", None)
# Each ladder rung against the rung below it, in the table's order (table.py fills them).
STEP_COLUMNS = [
    RUNG_BELOW,
    SPEEDUP_VS_BELOW,
    SPEEDUP_VS_BELOW_LOW,
    SPEEDUP_VS_BELOW_HIGH,
    TIME_P_VS_BELOW,
    TIME_VS_BELOW,
    ACCURACY_VS_BELOW,
]
STUDY_TIME = Column("Study Training Time (seconds)", _study(0), measured=True)
STUDY_ACCURACY = Column("Study Accuracy (%)", _study(1), measured=True)
STUDY_MEMORY = Column("Study Memory Usage (MB)", _study(2), measured=True)

# The clock: the first epoch apart from the steady ones, where stop_at stopped, time to target.
FIRST_EPOCH = Column("First Epoch Time (s)", _mean("first_epoch_time_s"), measured=True)
STEADY_EPOCH = Column("Steady Epoch Time (s)", _mean("steady_epoch_time_s"), measured=True)


def _first_step_excess(result: dict) -> float | None:
    """The median over replicates of the first step's time less a steady step's."""
    excess = [r["first_step_excess_s"] for r in result["replicates"] if r["status"] == "ok"]
    excess = [value for value in excess if value is not None]
    return statistics.median(excess) if excess else None


def _stopped_at(result: dict) -> str | None:
    """Each replicate's stopping epoch ("never": it trained every epoch); empty without
    stop_at."""
    if result["settings"].get("stop_at") is None:
        return None
    epochs = [r["stopped_at_epoch"] for r in result["replicates"]]
    return " ".join("never" if epoch is None else str(epoch) for epoch in epochs) or None


FIRST_STEP_EXCESS = Column("First Step Excess (s)", _first_step_excess, measured=True)
STOPPED_AT = Column("Stopped at Epoch", _stopped_at)
TIME_TO_PREFIX = "Time to "


def targets_of(results: list[dict]) -> list[float]:
    """The targets the documents give times for, in increasing order."""
    return sorted({target for result in results for target in result["targets"]})


def time_to_target_columns(target: float) -> tuple[Column, Column]:
    """A target's two columns: the median time to reach it over the replicates (empty: not
    reached, or not evaluated every epoch) and how many of them reached it."""
    key = target_key(target)

    def entry(result: dict) -> dict | None:
        return (result["time_to_target"] or {}).get(key)

    def reached(result: dict) -> str | None:
        found = entry(result)
        return None if found is None else f"reached {found['reached']} of {found['n']}"

    return (
        Column(f"{TIME_TO_PREFIX}{key}% (s)", lambda r: (entry(r) or {}).get("median_s"), True),
        Column(f"{TIME_TO_PREFIX}{key}% Reached", reached),
    )


def table_columns(targets: list[float]) -> list["Column"]:
    """COLUMNS with each target's two columns after `STOPPED_AT`."""
    at = COLUMNS.index(STOPPED_AT) + 1
    added = [column for target in targets for column in time_to_target_columns(target)]
    return [*COLUMNS[:at], *added, *COLUMNS[at:]]


# In the CSV's order: the study's five columns first, header text verbatim.
COLUMNS = [
    VARIANT,
    TIME,
    ACCURACY,
    MEMORY,
    EPOCHS,
    STATUS,
    Column("Device Requested", lambda r: r["device"]["requested"]),
    DEVICE_USED,
    DEVICE_NAME,
    FALLBACK,
    MACHINE,
    MACHINE_ID,
    Column("Model", _setting("model")),
    Column("Batch Size", _setting("batch_size")),
    Column("Workers", _workers),
    Column("Loader", _setting("loader")),
    Column("Precision", _setting("precision")),
    Column("Batch Norm", _setting("batch_norm")),
    Column("Optimizer", _setting("optimizer")),
    Column("Learning Rate", _setting("lr")),
    TRAIN_IMAGES,
    TEST_IMAGES,
    SPEEDUP_VS_CPU,
    BASELINE,
    SPEEDUP_VS_BASELINE,
    REPLICATES,
    TIME_STD,
    ACCURACY_STD,
    MEMORY_STD,
    TIME_LOW,
    TIME_HIGH,
    ACCURACY_LOW,
    ACCURACY_HIGH,
    TIME_P,
    TIME_VERDICT,
    ACCURACY_P,
    ACCURACY_VERDICT,
    Column("Training Time CV (%)", _time_variation, measured=True),
    NOISY,
    # Robust statistics, the machine's load, and the ladder step by step.
    TIME_MEDIAN,
    TIME_MIN,
    TIME_MAX,
    MACHINE_BUSY,
    OTHER_CPU,
    Column("Steal (cores)", _load_mean("steal_cores"), measured=True),
    Column("Job CPU (cores)", _load_mean("own_cpu_cores"), measured=True),
    Column("Load Average at Start", _load_mean("load_average_start"), measured=True),
    Column("Other GPU Processes", _load_mean("other_gpu_processes"), measured=True),
    *STEP_COLUMNS,
    STUDY_TIME,
    STUDY_ACCURACY,
    STUDY_MEMORY,
    Column("Peak RSS incl. Workers (MB)", _mean("peak_rss_with_workers_mb"), measured=True),
    Column("CUDA Peak Allocated (MB)", _mean("cuda_peak_allocated_mb"), measured=True),
    Column("CUDA Peak Reserved (MB)", _mean("cuda_peak_reserved_mb"), measured=True),
    Column("Throughput (images/s)", _mean("throughput_img_s"), measured=True),
    ENERGY,
    ENERGY_PER_IMAGE,
    Column("Data Wait (seconds)", _mean("data_wait_s"), measured=True),
    FIRST_EPOCH,
    STEADY_EPOCH,
    FIRST_STEP_EXCESS,
    STOPPED_AT,
    Column("Job Wall Time (seconds)", lambda r: r["job"]["wall_time_s"], measured=True),
    # Start-up overhead of the (first seed's) job: from its process start to its first batch.
    Column(
        "Start to First Batch (seconds)",
        _first_replicate("first_batch_after_job_start_s"),
        measured=True,
    ),
    Column("Torch Threads", lambda r: r["environment"]["torch_threads"]),
    Column("Reason", lambda r: r["reason"]),
    SETTINGS_HASH,
]
