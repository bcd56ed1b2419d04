"""A variant's metrics document: what train writes and everything after it reads. It is a
versioned contract (workflow/schemas/metrics.schema.yaml), checked where it is written and read.
"""

import dataclasses
import functools
import json
import statistics
from pathlib import Path

import jsonschema
import yaml

from cifarbench.errors import UserError
from cifarbench.schemas import Validator
from cifarbench.settings import Settings, settings_hash
from cifarbench.targets import replicate_times, summarize_target, target_key

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_PATH = SCHEMAS / "metrics.schema.yaml"
# Bump with the schema on any change a reader could notice. 2: the stock-by-default settings;
# 3: each seed trained in its own job (job.wall_time_s sums the seeds' jobs); 4: the machine's
# fingerprint (environment.machine), each replicate's energy (off during evaluation), data.md5
# (the archive it was trained on), accuracy after every epoch and the training clock at each
# epoch's end, time to target, stop_at, the first epoch and first step apart from the steady
# ones.
# 5: each replicate's machine_load (cifarbench.load); 6: the settings width, whiten,
# weight_decay_on, ema and tta.
SCHEMA_VERSION = 6

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
    "energy_j": lambda r: r["energy"]["joules"],
    "energy_per_image_mj": lambda r: r["energy"]["per_image_mj"],
    "first_epoch_time_s": lambda r: r["first_epoch_time_s"],
    "steady_epoch_time_s": lambda r: r["steady_epoch_time_s"],
}


def metrics_document(
    variant: str,
    settings: Settings,
    data: dict,
    device: dict,
    replicates: list[dict],
    reason: str | None,
    environment: dict,
    job: dict,
    targets: list[float] = (),
) -> dict:
    """The whole document for one variant, its status decided from its replicates, with each
    replicate's time to each of `targets` where it was evaluated after every epoch."""
    status, reason = variant_status(replicates, reason)
    per_epoch = settings.evaluate == "every_epoch"
    replicates = [_with_times(r, targets if per_epoch else None) for r in replicates]
    return {
        "schema_version": SCHEMA_VERSION,
        "variant": variant,
        "status": status,
        "reason": reason,
        "settings": settings.to_dict(),
        "settings_hash": settings_hash(settings.to_dict()),
        "data": data,
        "device": device,
        "epochs": settings.epochs,
        "summary": summary_statistics(replicates),
        "targets": list(targets),
        # None: not evaluated after every epoch (evaluate: end), so not measured.
        "time_to_target": _target_summary(replicates, targets) if per_epoch else None,
        "replicates": replicates,
        "environment": environment,
        "job": job,
    }


def _with_times(replicate: dict, targets: list[float] | None) -> dict:
    times = None if targets is None else replicate_times(replicate["epochs"], targets)
    return {**replicate, "time_to_target": times}


def _target_summary(replicates: list[dict], targets: list[float]) -> dict:
    finished = _finished(replicates)
    return {
        target_key(t): summarize_target([r["time_to_target"][target_key(t)] for r in finished])
        for t in targets
    }


def combine(records: list[dict], machine: str | None = None, targets: list[float] = ()) -> dict:
    """The variant's metrics document from its seeds' records (cifarbench.train.run_seed),
    in seed order, with time to each of `targets` (the config's). Its environment is the
    first seed's, its machine named `machine` (the config's `machine:`; None keeps the host's
    name); its job spans all of them."""
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
    environment = first["environment"]
    if machine:
        environment = {
            **environment,
            "machine": {**environment.get("machine", {}), "name": machine},
        }
    return metrics_document(
        first["variant"],
        settings,
        first["data"],
        first["device"],
        replicates,
        first["reason"],
        environment,
        job,
        targets,
    )


def check_trained_as_asked(document: dict, asked: dict, source: str) -> dict:
    """Return `document`, or raise UserError unless it was trained with the settings the config
    asks for: a stopped retrain must never leave the old result standing under new settings."""
    if document["settings_hash"] == settings_hash(asked):
        return document
    trained = document["settings"]
    differ = [key for key in asked if trained.get(key) != asked[key]]
    said = ", ".join(f"{key}: {json.dumps(trained.get(key))}" for key in differ)
    wanted = ", ".join(f"{key}: {json.dumps(asked[key])}" for key in differ)
    variant = document["variant"]
    raise UserError(
        f"{source}: trained with {said or 'other settings'}, the config asks for "
        f"{wanted or 'others'}; to retrain it, remove results/{variant}.json and "
        f"results/seeds/{variant}/, and run again"
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
def _validator(definition: str | None = None) -> Validator:
    """The metrics document's validator, or one of its `$defs` (`record`)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    if definition:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return Validator(schema)


@functools.cache
def _settings_validator() -> Validator:
    """A document's settings are a variant's settings as the config defines them, every one
    present: the readers look up `model`, `loader`, `workers`... by name."""
    settings = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())["$defs"]["settings"]
    return Validator({**settings, "required": [f.name for f in dataclasses.fields(Settings)]})


def check_metrics(document: dict, source: str) -> dict:
    """Return `document` unchanged, or raise UserError naming `source` and the broken field."""
    return _checked(document, source, _validator(), "a cifarbench metrics file")


def check_record(record: dict, source: str) -> dict:
    """The same for one seed's record (results/seeds/...), which summarize reads."""
    return _checked(record, source, _validator("record"), "a cifarbench seed record")


def _checked(document, source: str, validator: Validator, kind: str) -> dict:
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        error = jsonschema.exceptions.best_match(
            _settings_validator().iter_errors(document["settings"])
        )
        if error is not None:
            error.path.appendleft("settings")
    if error is not None:
        raise UserError(f"{source}: not {kind}: {field_path(error)}: {error.message}")
    return document


def field_path(error: jsonschema.ValidationError) -> str:
    """Where in a document (a metrics JSON, the config) a schema error is, as dotted keys
    (`variants.cpu.lr`)."""
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"
