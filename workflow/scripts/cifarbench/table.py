"""Per-variant metrics JSONs -> the study's table (its five columns verbatim, then the rest)."""

import json
import logging
from pathlib import Path

import pandas as pd

from cifarbench import stats
from cifarbench.atomic import atomic_path
from cifarbench.columns import (
    ACCURACY_P,
    ACCURACY_VERDICT,
    BASELINE,
    COLUMNS,
    NOISY,
    SPEEDUP_VS_BASELINE,
    SPEEDUP_VS_CPU,
    TIME,
    TIME_P,
    TIME_VERDICT,
    VARIANT,
)
from cifarbench.config import DEFAULT_BASELINES
from cifarbench.contract import check_metrics
from cifarbench.document import check_trained_as_asked, replicate_values
from cifarbench.errors import UserError

log = logging.getLogger("cifarbench.table")


def load_results(paths: list[str], settings: dict[str, dict] | None = None) -> list[dict]:
    """Read and check each variant's JSON, in the given order; given `settings` (each variant's
    settings as the config asks for them), refuse a result trained under others."""
    results = [_load_result(Path(path)) for path in paths]
    for result, path in zip(results, paths, strict=True):
        if settings is not None:
            check_trained_as_asked(result, settings[result["variant"]], path)
    return results


def _load_result(path: Path) -> dict:
    return check_named_by_its_file(check_metrics(read_metrics(path), str(path)), path)


def check_named_by_its_file(document: dict, path: Path) -> dict:
    """A checked document, refused unless it is the variant its file is named after."""
    if document["variant"] != path.stem:
        raise UserError(f"{path}: holds variant {document['variant']!r}, not {path.stem!r}")
    return document


def read_metrics(path: Path) -> dict:
    """A metrics file's JSON, unchecked; NaN and Infinity are refused."""
    try:
        return json.loads(path.read_text(), parse_constant=_not_finite)
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: cannot read metrics: {error}") from error


def _not_finite(constant: str):
    raise ValueError(f"{constant} is not a finite number")


def build_table(results: list[dict], baselines: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per variant, one column per `COLUMNS` entry, in order. The study's columns
    carry means over replicates; "Memory Usage (MB)" is the study's measure, main-process RSS
    averaged over training. Each row is compared with its baseline (`baselines`, else `cpu`
    for CPU variants and `g-initial` for GPU ones) where that ran in this table."""
    rows = [
        {column.header: column.value(result) for column in COLUMNS if column.value}
        for result in results
    ]
    table = pd.DataFrame(rows, columns=[column.header for column in COLUMNS])
    table[SPEEDUP_VS_CPU.header] = _speedup(
        table, pd.Series(DEFAULT_BASELINES["cpu"], index=table.index)
    )
    chosen = [_baseline(result, baselines or {}) for result in results]
    table[BASELINE.header] = pd.Series(chosen, index=table.index, dtype=object)
    table[SPEEDUP_VS_BASELINE.header] = _speedup(table, table[BASELINE.header])
    _compare(table, results, chosen)
    _warn_noisy(table)
    return table


def _baseline(result: dict, baselines: dict[str, str]) -> str:
    return baselines.get(result["variant"]) or DEFAULT_BASELINES[result["device"]["requested"]]


def _speedup(table: pd.DataFrame, baselines: pd.Series) -> pd.Series:
    """Each row's baseline's training time over its own (NaN where the baseline did not run
    in this table)."""
    times = table.set_index(VARIANT.header)[TIME.header].astype(float)
    baseline_times = baselines.map(times).astype(float)
    return baseline_times / table[TIME.header].astype(float)


def _compare(table: pd.DataFrame, results: list[dict], chosen: list[str]) -> None:
    """Welch's t-test of each row's replicates against its baseline's, time and accuracy."""
    by_name = {result["variant"]: result for result in results}
    comparisons = [
        (TIME_P, TIME_VERDICT, "training_time_s", ("faster", "slower")),
        (ACCURACY_P, ACCURACY_VERDICT, "accuracy_pct", ("lower", "higher")),
    ]
    for p_column, verdict_column, metric, words in comparisons:
        pairs = [
            (replicate_values(result, metric), replicate_values(by_name[baseline], metric))
            if baseline in by_name
            else None
            for result, baseline in zip(results, chosen, strict=True)
        ]
        table[p_column.header] = [stats.welch_p(*pair) if pair else None for pair in pairs]
        table[verdict_column.header] = [
            stats.verdict(*pair, words) if pair else None for pair in pairs
        ]


def _warn_noisy(table: pd.DataFrame) -> None:
    for name in table.loc[table[NOISY.header].astype(bool), VARIANT.header]:
        log.warning(
            "%s: its replicates' training times vary by more than %.0f%% (coefficient of "
            "variation): other load on the machine? Its Noisy column says so.",
            name,
            100 * stats.NOISY_CV,
        )


def write_csv(table: pd.DataFrame, path: str) -> None:
    """Measured columns to 2 decimals, as the study wrote them; settings as given; text that a
    spreadsheet would run as a formula made inert."""
    measured = {column.header: 2 for column in COLUMNS if column.measured}
    with atomic_path(path) as tmp:
        table.round(measured).map(_inert).to_csv(tmp, index=False)


def _inert(cell):
    """A text cell starting with = + - @ (or a tab or carriage return) is a formula to a
    spreadsheet; a leading apostrophe makes it text, as OWASP's CSV-injection advice says."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell
