"""Validate the workflow's config and resolve each variant's settings (used by common.smk)."""

import difflib
import hashlib
import itertools
import json
import math
import re
from pathlib import Path

import jsonschema
import yaml

from cifarbench import ladders as ladder_runs
from cifarbench import sweeps
from cifarbench.document import field_path
from cifarbench.errors import UserError
from cifarbench.settings import changed_settings

# Top-level keys that, when set, replace that setting in every variant.
RUN_WIDE_OVERRIDES = ("epochs", "replicates")
# A variant name is a file name (results/{variant}.json) and a CSV label.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What each row is compared with, unless its sweep names a `baseline`: the study's "compared
# to CPU" for CPU variants, its first GPU run for GPU variants.
DEFAULT_BASELINES = {"cpu": "cpu", "cuda": "g-initial"}

# Settings that only work with others: (setting, value) -> the settings it needs.
NEEDS = {
    # The study's Net written out, trained in float32 on plain cross-entropy (handwritten.py).
    ("backward", "handwritten"): {
        "model": "net",
        "batch_norm": False,
        "precision": "fp32",
        "label_smoothing": 0,
        "channels_last": False,
        "compile": False,
    },
    # The ResNet always has batch norm (models.py): the setting cannot turn it on or off.
    ("model", "resnet"): {"batch_norm": False},
}


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Raise UserError with the offending field's path when `config` breaks the schema."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    _check_finite(config)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise UserError(f"config: {field_path(error)}: {_explain(error, schema)}")
    sweeps.check(config, schema["$defs"]["settings"])
    _check_sweep_cells(config)
    _check_only(config)
    for variant in all_variants(config):
        _check_combinations(variant, variant_settings(config, variant))
    for ladder, rungs in config.get("ladders", {}).items():
        _check_ladder(config, ladder, rungs)


def _check_finite(node, path: tuple = ()) -> None:
    """NaN and infinity pass every JSON-schema bound: refuse them anywhere in the config."""
    if isinstance(node, float) and not math.isfinite(node):
        raise UserError(f"config: {'.'.join(map(str, path))}: {node} is not a finite number")
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            _check_finite(child, (*path, key))


def _explain(error: jsonschema.ValidationError, schema: dict) -> str:
    """Turn a schema error into a sentence; suggest the nearest key for a typo."""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hints = [difflib.get_close_matches(key, allowed, n=1) for key in unknown]
        said = ", ".join(
            f"'{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            for key, hint in zip(unknown, hints, strict=True)
        )
        return f"unknown key {said}; allowed: {', '.join(allowed)}"
    if error.validator == "pattern" and error.path and not _at(error, "md5"):
        return f"{error.instance!r} is not a valid name (letters, digits, '.', '_', '-')"
    if list(error.absolute_path) == ["only"] and error.instance is None:
        return "empty: name the variants (only=cpu,g-b16-w4), or leave only out to run them all"
    if error.validator == "type" and isinstance(error.instance, int) and _at(error, "md5"):
        return f"{error.message} (YAML read the all-digit md5 as a number: quote it)"
    if (
        error.validator == "enum"
        and isinstance(error.instance, bool)
        and "on" in error.validator_value
    ):
        return f'{error.message} (YAML reads a bare on/off as true/false: write "on" or "off")'
    return error.message


def _at(error: jsonschema.ValidationError, key: str) -> bool:
    return bool(error.path) and error.path[-1] == key


def _check_sweep_cells(config: dict) -> None:
    """Cells are valid variant names, clash with no hand-written variant, and a sweep's
    `baseline` is a variant or one of its cells."""
    variants = all_variants(config)
    for sweep, spec in (config.get("sweeps") or {}).items():
        for name in sweeps.cells(sweep, spec):
            if not VARIANT_NAME.fullmatch(name):
                raise UserError(f"config: sweeps.{sweep}: {name!r} is not a valid variant name")
            if name in config["variants"]:
                raise UserError(f"config: sweeps.{sweep}: {name} is also a hand-written variant")
        baseline = spec.get("baseline")
        if baseline is not None and baseline not in variants:
            raise UserError(f"config: sweeps.{sweep}.baseline: unknown variant {baseline!r}")


def _check_only(config: dict) -> None:
    variants = all_variants(config)
    unknown = [name for name in selected_variants(config) if name not in variants]
    if unknown:
        runs = [*(config.get("sweeps") or {}), *ladder_runs.runs(config)]
        known = ", ".join([*config["variants"], *runs])
        raise UserError(f"config: only: unknown variant {', '.join(unknown)}; known: {known}")


def _check_combinations(variant: str, settings: dict) -> None:
    for (key, value), needs in NEEDS.items():
        if settings[key] != value:
            continue
        wrong = [other for other, wanted in needs.items() if settings[other] != wanted]
        if wrong:
            wanted = ", ".join(f"{other}: {json.dumps(needs[other])}" for other in wrong)
            has = ", ".join(f"{other}: {json.dumps(settings[other])}" for other in wrong)
            raise UserError(
                f"config: variants.{variant}: {key}: {value} needs {wanted} (it has {has})"
            )


def _check_ladder(config: dict, ladder: str, rungs: list[str]) -> None:
    """Each rung names a variant and turns on exactly one setting more than the one below."""
    unknown = [rung for rung in rungs if rung not in config["variants"]]
    if unknown:
        raise UserError(f"config: ladders.{ladder}: unknown variant {', '.join(unknown)}")
    for rung in rungs:
        name = ladder_runs.rung_variant(ladder, rung)
        if not VARIANT_NAME.fullmatch(name) or name in config["variants"]:
            raise UserError(
                f"config: ladders.{ladder}: its own run's rung {name!r} is not a "
                "free variant name (64 characters at most)"
            )
    for below, rung in itertools.pairwise(rungs):
        changed = changed_settings(variant_settings(config, below), variant_settings(config, rung))
        if len(changed) != 1:
            raise UserError(
                f"config: ladders.{ladder}: {rung} must change one setting from {below}; "
                f"it changes {len(changed)}: {', '.join(changed) or 'none'}"
            )


def all_variants(config: dict) -> dict[str, dict | None]:
    """Every variant's name -> its changes from `defaults`: hand-written, then sweep cells,
    then the rungs of the ladders' own runs."""
    return {**config["variants"], **sweeps.expand(config), **ladder_runs.expand(config)}


def only_names(config: dict) -> list[str] | None:
    """`only`'s names (variants or sweeps) as given, each once; None without `only`."""
    only = config.get("only")
    if only is None:
        return None
    names = only.split(",") if isinstance(only, str) else only
    return list(dict.fromkeys(name.strip() for name in names))


def selected_variants(config: dict) -> list[str]:
    """The variants this run tabulates and plots, in order, each once: `only`'s names, a sweep
    name standing for its baseline (if it names one) and its cells, a ladder's run name
    (`cpu-ladder`) for its rungs as that run trains them; or, without `only`, the
    hand-written variants (sweeps and ladder runs run when selected)."""
    only = only_names(config)
    if only is None:
        return list(config["variants"])
    names = []
    ladders = ladder_runs.runs(config)
    for name in only:
        if name in ladders:  # a ladder's own run: its rungs, with ladder_settings
            names += ladders[name]
            continue
        sweep = (config.get("sweeps") or {}).get(name)
        if sweep is None:
            names.append(name)
            continue
        names += [sweep["baseline"]] if "baseline" in sweep else []
        names += list(sweeps.cells(name, sweep))
    return list(dict.fromkeys(names))


def report_dir(config: dict) -> str:
    """Where the run's CSV and figures go: `results/` for the whole study, `results/<tag>/`
    when a `tag` is set, and `results/partial/<only's names>/` for an `only=` run without one,
    so that a partial run never overwrites the whole study's table and figures."""
    return "results" + _report_subfolder(config)


def report_logs(config: dict) -> str:
    """Where the run's report rules log, beside each other per report: `logs/report/`,
    `logs/report/<tag>/` or `logs/report/partial/<only's names>/`."""
    return "logs/report" + _report_subfolder(config)


def _report_subfolder(config: dict) -> str:
    """The run's own part of its report folder: "", "/<tag>" or "/partial/<only's names>"."""
    if config.get("tag"):
        return f"/{config['tag']}"
    names = only_names(config)
    if names is None:
        return ""
    short = "+".join(names)  # as asked: `only=batch-workers` is results/partial/batch-workers/
    if len(short) > 60:
        digest = hashlib.sha256(short.encode()).hexdigest()[:6]
        short = f"{names[0]}+{len(names) - 1}-more-{digest}"
    return f"/partial/{short}"


def ladder_rungs(config: dict) -> dict[str, list[str]]:
    """Each ladder's rungs as this run trains them (ladders.as_run)."""
    return ladder_runs.as_run(config, selected_variants(config))


def heatmap_sweeps(config: dict) -> dict[str, dict[str, dict]]:
    """The two-axis sweeps with a cell in this run -> each cell's name -> its axis values."""
    selected = set(selected_variants(config))
    chosen = {}
    for sweep, spec in (config.get("sweeps") or {}).items():
        cells = sweeps.cells(sweep, spec)
        if len(spec["axes"]) == 2 and selected & set(cells):
            chosen[sweep] = cells
    return chosen


def baselines(config: dict) -> dict[str, str]:
    """Each variant's baseline: its sweep's `baseline`, else by the device it asks for."""
    chosen = {
        variant: DEFAULT_BASELINES[variant_settings(config, variant)["device"]]
        for variant in all_variants(config)
    }
    for rungs in ladder_runs.runs(config).values():  # a ladder's own run: its stock rung
        chosen.update(dict.fromkeys(rungs, rungs[0]))
    for sweep, spec in (config.get("sweeps") or {}).items():
        if "baseline" in spec:
            chosen.update(dict.fromkeys(sweeps.cells(sweep, spec), spec["baseline"]))
    return chosen


def variant_settings(config: dict, variant: str) -> dict:
    """`defaults`, then the variant's changes, then the run-wide overrides (`epochs`, ...)."""
    settings = {**config["defaults"], **(all_variants(config)[variant] or {})}
    for key in RUN_WIDE_OVERRIDES:
        if config.get(key) is not None:
            settings[key] = config[key]
    return settings


def spec_settings(config: dict, spec: str) -> dict:
    """Settings of `variant[/key=value...]` (a benchmark's arm): the variant's, with those keys
    changed, each value read as config.yaml would read it."""
    variant, *changes = spec.split("/")
    if variant not in all_variants(config):
        raise UserError(f"{spec}: no variant {variant!r} in config.yaml")
    settings = variant_settings(config, variant)
    for change in changes:
        key, value = change.split("=", 1)
        if key not in settings:
            raise UserError(f"{spec}: unknown setting {key!r}")
        settings[key] = yaml.safe_load(value)
    return settings


def nvidia_driver_loaded() -> bool:
    """Whether this machine could run CUDA, cheaply (importing torch would slow every DAG)."""
    return Path("/proc/driver/nvidia").exists()
