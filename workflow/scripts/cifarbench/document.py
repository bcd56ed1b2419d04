"""A variant's metrics document: what train writes and everything after it reads (the contract
is workflow/schemas/metrics.schema.yaml, checked by cifarbench.contract)."""

import statistics

from cifarbench.config import settings_hash
from cifarbench.settings import Settings

# Bump with the schema on any change a reader could notice. 2: the stock-by-default settings.
SCHEMA_VERSION = 2

# Metrics with a mean and standard deviation over the replicates that finished.
SUMMARIZED = {
    "training_time_s": lambda r: r["training_time_s"],
    "accuracy_pct": lambda r: r["accuracy_pct"],
    "memory_mb": lambda r: r["memory"]["rss_mean_mb"],
    "peak_rss_with_workers_mb": lambda r: r["memory"]["rss_peak_with_workers_mb"],
    "cuda_peak_allocated_mb": lambda r: r["memory"]["cuda_peak_allocated_mb"],
    "cuda_peak_reserved_mb": lambda r: r["memory"]["cuda_peak_reserved_mb"],
    "throughput_img_s": lambda r: r["throughput_img_s"],
    "data_wait_s": lambda r: sum(epoch["data_wait_s"] for epoch in r["epochs"]),
}


def metrics_document(
    variant: str,
    settings: Settings,
    device: dict,
    replicates: list[dict],
    reason: str | None,
    environment: dict,
    job: dict,
) -> dict:
    """The whole document for one variant, its status decided from its replicates."""
    status, reason = variant_status(replicates, reason)
    return {
        "schema_version": SCHEMA_VERSION,
        "variant": variant,
        "status": status,
        "reason": reason,
        "settings": settings.to_dict(),
        "settings_hash": settings_hash(settings.to_dict()),
        "device": device,
        "epochs": settings.epochs,
        "summary": summarize(replicates),
        "replicates": replicates,
        "environment": environment,
        "job": job,
    }


def variant_status(replicates: list[dict], reason: str | None) -> tuple[str, str | None]:
    if not replicates:
        return "skipped", reason
    diverged = [r for r in replicates if r["status"] == "diverged"]
    if diverged:
        where = diverged[0]["diverged_at"]
        return "diverged", (
            f"seed {diverged[0]['seed']}: loss became NaN/inf at epoch "
            f"{where['epoch']}, batch {where['batch']}"
        )
    return "ok", reason


def summarize(replicates: list[dict]) -> dict:
    """Mean and sample standard deviation of each metric over the replicates that finished."""
    finished = [r for r in replicates if r["status"] == "ok"]
    summary = {"n": len(finished)}
    for name, pick in SUMMARIZED.items():
        values = [pick(r) for r in finished if pick(r) is not None]
        summary[name] = {
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
        }
    return summary
