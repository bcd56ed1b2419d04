"""Time to a target accuracy, as the field ranks training (DAWNBench: the first epoch at or
above the target; MLPerf Training: a run that never reaches it is infinitely slow).

A replicate's time to a target is its training clock (evaluation excluded) at the end of the
first epoch whose test accuracy reaches the target, or "not reached": never 0, never the
full time.
"""

import math
import statistics


def target_key(target: float) -> str:
    """A target as the JSON keys it and the CSV's header writes it: 60, 62.5."""
    return f"{target:g}"


def time_to_target(epochs: list[dict], target: float) -> dict:
    """When a replicate's epochs (loop.EpochLog, as dicts) first reach `target` percent."""
    for epoch in epochs:
        if epoch["accuracy_pct"] is not None and epoch["accuracy_pct"] >= target:
            return {"reached": True, "epoch": epoch["epoch"], "time_s": epoch["clock_s"]}
    return {"reached": False, "epoch": None, "time_s": None}


def replicate_times(epochs: list[dict], targets: list[float]) -> dict:
    """Each target's time for one replicate, keyed by target_key."""
    return {target_key(target): time_to_target(epochs, target) for target in targets}


def summarize_target(times: list[dict]) -> dict:
    """Over a variant's replicates: the median time, a replicate that never reached the target
    counting as infinitely slow (so the median is None, "not reached", when half or more
    never did), and how many reached it."""
    seconds = [t["time_s"] if t["reached"] else math.inf for t in times]
    median = statistics.median(seconds) if seconds else math.inf
    return {
        "median_s": median if math.isfinite(median) else None,
        "reached": sum(t["reached"] for t in times),
        "n": len(times),
    }
