"""A variant's metrics document: what train writes and everything after it reads. It is a
versioned contract (workflow/schemas/metrics.schema.yaml), checked where it is written and read.
"""

import functools
import statistics
from pathlib import Path

import jsonschema
import yaml

from cifarbench.errors import UserError
from cifarbench.settings import Settings, settings_hash

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "metrics.schema.yaml"
# Bump with the schema on any change a reader could notice. 2: the stock-by-default settings;
# 3: each seed trained in its own job (job.wall_time_s sums the seeds' jobs); 4: each
# replicate's machine_load (cifarbench.load).
SCHEMA_VERSION = 4

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
        "summary": summary_statistics(replicates),
        "replicates": replicates,
        "environment": environment,
        "job": job,
    }


def combine(records: list[dict]) -> dict:
    """The variant's metrics document from its seeds' records (cifarbench.train.run_seed),
    in seed order. Its environment is the first seed's; its job spans all of them."""
    first = records[0]
    settings = Settings.from_dict(first["settings"])
    if [r["seed"] for r in records] != list(settings.seeds):
        raise UserError(
            f"variant {first['variant']}: records of seeds "
            f"{[r['seed'] for r in records]} do not match its settings"
        )
    job = {
        "start": min(r["job"]["start"] for r in records),
        "end": max(r["job"]["end"] for r in records),
        "wall_time_s": sum(r["job"]["wall_time_s"] for r in records),
    }
    replicates = [r["replicate"] for r in records if r["replicate"] is not None]
    return metrics_document(
        first["variant"],
        settings,
        first["device"],
        replicates,
        first["reason"],
        first["environment"],
        job,
    )


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


def replicate_values(result: dict, metric: str) -> list[float]:
    """One metric of each replicate that finished, e.g. every seed's training time."""
    return _values(_finished(result["replicates"]), metric)


def summary_statistics(replicates: list[dict]) -> dict:
    """Mean and sample standard deviation of each metric over the replicates that finished."""
    finished = _finished(replicates)
    summary = {"n": len(finished)}
    for metric in SUMMARIZED:
        values = _values(finished, metric)
        summary[metric] = {
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
        }
    return summary


def _finished(replicates: list[dict]) -> list[dict]:
    return [r for r in replicates if r["status"] == "ok"]


def _values(replicates: list[dict], metric: str) -> list[float]:
    """A metric of each replicate, where it has one (a CPU run has no CUDA memory)."""
    pick = SUMMARIZED[metric]
    return [pick(r) for r in replicates if pick(r) is not None]


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA_PATH.read_text()))


def check_metrics(document: dict, source: str) -> dict:
    """Return `document` unchanged, or raise UserError naming `source` and the broken field."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise UserError(
            f"{source}: not a cifarbench metrics file: {field_path(error)}: {error.message}"
        )
    return document


def field_path(error: jsonschema.ValidationError) -> str:
    """Where in a document (a metrics JSON, the config) a schema error is, as dotted keys
    (`variants.cpu.lr`)."""
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"
