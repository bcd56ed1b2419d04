"""Per-variant metrics JSONs -> the study's table (its five columns verbatim, then the rest)."""

import json
import logging
import math
import statistics
from pathlib import Path

import pandas as pd

from cifarbench import ladders as ladder_steps
from cifarbench import stats
from cifarbench.atomic import atomic_path
from cifarbench.columns import (
    ACCURACY_P,
    ACCURACY_VERDICT,
    ACCURACY_VS_BELOW,
    BASELINE,
    COLUMNS,
    CPU_BASELINE,
    MACHINE_BUSY,
    NOISY,
    OTHER_CPU,
    RUNG_BELOW,
    SPEEDUP_VS_BASELINE,
    SPEEDUP_VS_BELOW,
    SPEEDUP_VS_BELOW_HIGH,
    SPEEDUP_VS_BELOW_LOW,
    SPEEDUP_VS_CPU,
    STEP_COLUMNS,
    TIME,
    TIME_P,
    TIME_P_VS_BELOW,
    TIME_TO_PREFIX,
    TIME_VERDICT,
    TIME_VS_BELOW,
    VARIANT,
    table_columns,
    targets_of,
)
from cifarbench.document import check_metrics, check_trained_as_asked, replicate_values
from cifarbench.errors import UserError
from cifarbench.settings import computes_the_same
from cifarbench.units import MB

log = logging.getLogger("cifarbench.table")

# A metrics document is a few hundred KB at most (1000 replicates of 100 epochs), nested 5 deep.
MAX_METRICS_BYTES = 64 * MB
MAX_METRICS_DEPTH = 16


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
    """A metrics file's JSON, unchecked. An edited file is read in bounded memory and time:
    no more than MAX_METRICS_BYTES, nested no deeper than MAX_METRICS_DEPTH, and NaN,
    Infinity and numbers too large to be finite (1e400) are refused."""
    try:
        with open(path, "rb") as file:  # a link to /dev/zero in results/ reads forever
            text = file.read(MAX_METRICS_BYTES + 1)
        if len(text) > MAX_METRICS_BYTES:
            raise ValueError(f"larger than {MAX_METRICS_BYTES // MB} MB")
        document = json.loads(text, parse_constant=_not_finite, parse_float=_finite)
        _check_depth(document)
        return document
    except RecursionError as error:
        raise UserError(f"{path}: cannot read metrics: nested too deeply") from error
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: cannot read metrics: {error}") from error


def _not_finite(constant: str):
    raise ValueError(f"{constant} is not a finite number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is not a finite number")
    return number


def _check_depth(document) -> None:
    """Refuse nesting a metrics document never has: every reader after this one (the schema
    check, the figures) may walk it recursively."""
    level, depth = [document], 0
    while level:
        depth += 1
        if depth > MAX_METRICS_DEPTH:
            raise ValueError(f"nested deeper than {MAX_METRICS_DEPTH} levels")
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]


def build_table(
    results: list[dict], baselines: dict[str, str], ladders: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """One row per variant, one column per `COLUMNS` entry, in order. The study's columns
    carry means over replicates; "Memory Usage (MB)" is the study's measure, main-process RSS
    averaged over training. Each row is compared with its baseline (`baselines`: each
    variant's, as config.baselines chooses it) where that ran in this table, and each ladder
    rung (`ladders`: config.ladder_rungs) with the rung below it. Each target accuracy the
    documents carry adds its time-to-target columns."""
    columns = table_columns(targets_of(results))
    rows = [
        {column.header: column.value(result) for column in columns if column.value}
        for result in results
    ]
    table = pd.DataFrame(rows, columns=[column.header for column in columns])
    table[SPEEDUP_VS_CPU.header] = _speedup(table, pd.Series(CPU_BASELINE, index=table.index))
    chosen = [baselines[result["variant"]] for result in results]
    table[BASELINE.header] = pd.Series(chosen, index=table.index, dtype=object)
    table[SPEEDUP_VS_BASELINE.header] = _speedup(table, table[BASELINE.header])
    _compare(table, results, chosen)
    _compare_steps(table, results, ladders or {})
    _warn_noisy(table)
    _warn_busy(table)
    return table


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


def _compare_steps(table: pd.DataFrame, results: list[dict], ladders: dict) -> None:
    """Each ladder rung against the rung below it, where both ran in this table."""
    by_name = {result["variant"]: result for result in results}
    below = {
        rung: lower
        for rung, lower in ladder_steps.steps(ladders).items()
        if rung in by_name and lower in by_name
    }
    steps = [
        ladder_step(by_name[name], by_name[below[name]]) if name in below else {}
        for name in table[VARIANT.header]
    ]
    for column in STEP_COLUMNS:
        table[column.header] = pd.Series(
            [step.get(column.header) for step in steps], index=table.index, dtype=object
        )


def ladder_step(rung: dict, below: dict) -> dict:
    """What a rung buys over the rung below it: the speedup (the ratio of mean times) with
    its 95% interval (Fieller), Welch's p and a verdict on time; on accuracy, a verdict, or
    "same numbers (proven)" where the rung computes exactly what the one below does."""
    times = replicate_values(rung, "training_time_s")
    below_times = replicate_values(below, "training_time_s")
    speedup = (
        statistics.fmean(below_times) / statistics.fmean(times) if times and below_times else None
    )
    low, high = stats.ratio_interval(below_times, times)
    same = computes_the_same(below["settings"], rung["settings"])
    accuracy = (replicate_values(rung, "accuracy_pct"), replicate_values(below, "accuracy_pct"))
    return {
        RUNG_BELOW.header: below["variant"],
        SPEEDUP_VS_BELOW.header: speedup,
        SPEEDUP_VS_BELOW_LOW.header: low,
        SPEEDUP_VS_BELOW_HIGH.header: high,
        TIME_P_VS_BELOW.header: stats.welch_p(times, below_times),
        TIME_VS_BELOW.header: stats.verdict(times, below_times, ("faster", "slower")),
        ACCURACY_VS_BELOW.header: "same numbers (proven)"
        if same
        else stats.verdict(*accuracy, ("lower", "higher")),
    }


def _warn_busy(table: pd.DataFrame) -> None:
    busy = table[MACHINE_BUSY.header].map(lambda flag: flag is True)
    for name, cores in zip(
        table.loc[busy, VARIANT.header], table.loc[busy, OTHER_CPU.header], strict=True
    ):
        log.warning(
            "%s: ran on a busy machine: other processes used %s cores beside it (above "
            "cifarbench.load.BUSY_CORES), so its time is partly the machine's. Its Machine "
            "Busy column says so.",
            name,
            "?" if pd.isna(cores) else f"{cores:.2f}",
        )


def _warn_noisy(table: pd.DataFrame) -> None:
    noisy = table[NOISY.header].astype(bool)
    for name, busy in zip(
        table.loc[noisy, VARIANT.header], table.loc[noisy, MACHINE_BUSY.header], strict=True
    ):
        log.warning(
            "%s: its replicates' training times vary by more than %.0f%% (coefficient of "
            "variation): %s Its Noisy column says so.",
            name,
            100 * stats.NOISY_CV,
            _noise_cause(busy),
        )


def _noise_cause(busy) -> str:
    """What the load meter says of a noisy row: another load, or the machine's own speed."""
    if pd.isna(busy):
        return "other load on the machine? (its load was not recorded)"
    if busy:
        return "other work ran beside it (Machine Busy)."
    # A VM's host, shared caches and clock boosts move its speed with no process of its own.
    return "nothing else used the machine meanwhile (Machine Busy is False): its speed moved."


def write_csv(table: pd.DataFrame, path: str) -> None:
    """Measured columns to 2 decimals, as the study wrote them; settings as given; text that a
    spreadsheet would run as a formula made inert."""
    measured = {column.header: 2 for column in COLUMNS if column.measured}
    measured |= {h: 2 for h in table.columns if h.startswith(TIME_TO_PREFIX) and h.endswith("(s)")}
    with atomic_path(path) as tmp:
        table.round(measured).map(_inert).to_csv(tmp, index=False)


def _inert(cell):
    """A text cell starting with = + - @ (or a tab or carriage return) is a formula to a
    spreadsheet; a leading apostrophe makes it text, as OWASP's CSV-injection advice says."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell
