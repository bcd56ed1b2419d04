"""Per-variant metrics JSONs -> the study's table (its five columns verbatim, then the rest)."""

import json
from pathlib import Path

import pandas as pd

from cifarbench.atomic import atomic_path
from cifarbench.columns import (
    BASELINE,
    COLUMNS,
    CPU_BASELINE,
    GPU_BASELINE,
    SPEEDUP_VS_BASELINE,
    SPEEDUP_VS_CPU,
    TIME,
    VARIANT,
)
from cifarbench.contract import check_metrics
from cifarbench.errors import UserError


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


def build_table(results: list[dict]) -> pd.DataFrame:
    """One row per variant, one column per `COLUMNS` entry, in order. The study's columns
    carry means over replicates; "Memory Usage (MB)" is the study's measure, main-process RSS
    averaged over training."""
    rows = [
        {column.header: column.value(result) for column in COLUMNS if column.value}
        for result in results
    ]
    table = pd.DataFrame(rows, columns=[column.header for column in COLUMNS])
    table[SPEEDUP_VS_CPU.header] = _speedup(table, pd.Series(CPU_BASELINE, index=table.index))
    requested = [result["device"]["requested"] for result in results]
    baselines = pd.Series(
        [GPU_BASELINE if device == "cuda" else CPU_BASELINE for device in requested],
        index=table.index,
        dtype=object,
    )
    table[BASELINE.header] = baselines
    table[SPEEDUP_VS_BASELINE.header] = _speedup(table, baselines)
    return table


def _speedup(table: pd.DataFrame, baselines: pd.Series) -> pd.Series:
    """Each row's baseline's training time over its own (NaN where the baseline did not run
    in this table)."""
    times = table.set_index(VARIANT.header)[TIME.header].astype(float)
    baseline_times = baselines.map(times).astype(float)
    return baseline_times / table[TIME.header].astype(float)


def write_csv(table: pd.DataFrame, path: str) -> None:
    """Measured columns to 2 decimals, as the study wrote them; settings as given."""
    measured = {column.header: 2 for column in COLUMNS if column.measured}
    with atomic_path(path) as tmp:
        table.round(measured).to_csv(tmp, index=False)
