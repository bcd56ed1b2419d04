"""Per-variant metrics JSONs -> the study's table (its five columns verbatim, then the rest)."""

import json
from pathlib import Path

import pandas as pd

from cifarbench.atomic import atomic_path
from cifarbench.contract import check_metrics
from cifarbench.errors import UserError

# The study's CSV header, verbatim: readers of the report compare against these.
STUDY_COLUMNS = [
    "Optimization Technique",
    "Training Time (seconds)",
    "Accuracy (%)",
    "Memory Usage (MB)",
    "Epochs",
]
BASELINE = "cpu"  # the study's speedups are "compared to CPU": this variant


def load_results(paths: list[str]) -> list[dict]:
    """Read and check each variant's JSON, in the given order."""
    results = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: cannot read metrics: {error}") from error
        results.append(check_metrics(document, path))
    return results


def to_row(result: dict) -> dict:
    """One variant's row. The study's columns carry means over replicates; "Memory Usage (MB)"
    is the study's measure, main-process RSS averaged over training."""
    summary, s, device = result["summary"], result["settings"], result["device"]

    def mean(name: str) -> float | None:
        return summary[name]["mean"]

    return {
        "Optimization Technique": result["variant"],
        "Training Time (seconds)": mean("training_time_s"),
        "Accuracy (%)": mean("accuracy_pct"),
        "Memory Usage (MB)": mean("memory_mb"),
        "Epochs": result["epochs"],
        "Status": result["status"],
        "Device Requested": device["requested"],
        "Device Used": device["used"] or "none",
        "Device Name": device["name"],
        "Fallback": device["fallback"],
        "Model": s["model"],
        "Batch Size": s["batch_size"],
        "Workers": s["workers"] if s["loader"] != "tensor" else 0,
        "Loader": s["loader"],
        "Precision": s["precision"],
        "Batch Norm": s["batch_norm"],
        "Optimizer": s["optimizer"],
        "Learning Rate": s["lr"],
        "Replicates": summary["n"],
        "Training Time Std (seconds)": summary["training_time_s"]["std"],
        "Accuracy Std (%)": summary["accuracy_pct"]["std"],
        "Memory Usage Std (MB)": summary["memory_mb"]["std"],
        "Peak RSS incl. Workers (MB)": mean("peak_rss_with_workers_mb"),
        "CUDA Peak Allocated (MB)": mean("cuda_peak_allocated_mb"),
        "CUDA Peak Reserved (MB)": mean("cuda_peak_reserved_mb"),
        "Throughput (images/s)": mean("throughput_img_s"),
        "Data Wait (seconds)": mean("data_wait_s"),
        "Job Wall Time (seconds)": result["job"]["wall_time_s"],
        "Start to First Batch (seconds)": _first_batch(result),
        "Torch Threads": result["environment"]["torch_threads"],
        "Reason": result["reason"],
        "Settings Hash": result["settings_hash"],
    }


def _first_batch(result: dict) -> float | None:
    """Start-up overhead of the job: from its process start to its first training batch."""
    replicates = result["replicates"]
    return replicates[0]["first_batch_after_job_start_s"] if replicates else None


def build_table(results: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame([to_row(result) for result in results])
    table.insert(table.columns.get_loc("Replicates"), f"Speedup vs {BASELINE}", _speedup(table))
    return table


def _speedup(table: pd.DataFrame) -> pd.Series:
    """Training-time speedup over the `cpu` variant (NaN when it is not in this run)."""
    times = table.set_index("Optimization Technique")["Training Time (seconds)"]
    baseline = times.get(BASELINE)
    if baseline is None or pd.isna(baseline):
        return pd.Series(float("nan"), index=table.index)
    return (baseline / table["Training Time (seconds)"]).astype(float)


def write_csv(table: pd.DataFrame, path: str) -> None:
    """Measured columns to 2 decimals, as the study wrote them; settings as given."""
    measured = [c for c in table.columns if "(" in c or c.startswith("Speedup")]
    with atomic_path(path) as tmp:
        table.round({column: 2 for column in measured}).to_csv(tmp, index=False)
