"""Validate the workflow's config and resolve each variant's settings (used by common.smk)."""

import collections
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
from cifarbench.schemas import Validator
from cifarbench.settings import as_written, changed_settings

# Top-level keys that, when set, replace that setting in every variant.
RUN_WIDE_OVERRIDES = ("epochs", "replicates")
# A variant name is a file name (results/{variant}.json) and a CSV label.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What each row is compared with, unless its sweep names a `baseline`: the study's "compared
# to CPU" for CPU variants, its first GPU run for GPU variants.
DEFAULT_BASELINES = {"cpu": "cpu", "cuda": "g-initial"}
# Snakemake's record of each training job's time and memory (the train rule's `benchmark:`).
TRAIN_BENCHMARK = "results/benchmarks/{variant}/seed{seed}.tsv"
# Caps that keep every command quick whatever the config says. Values, once YAML aliases are
# expanded (a list or dict counts one, as each of its items does): the shipped config has 250.
# Variants: hand-written and sweep cells, each validated before any job runs. Jobs: training
# jobs one run plans (variants x replicates).
MAX_CONFIG_VALUES = 100_000
MAX_VARIANTS = 5000
MAX_JOBS = 5000

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
    # The whitening filters are the ResNet's stem (models.whiten_stem).
    ("whiten", True): {"model": "resnet"},
}
# The ResNet's own options: another model cannot honour a value other than the default.
RESNET_OPTIONS = {"width": 16}


def validate_config(config: dict, schema_path: str | Path) -> dict[str, dict]:
    """Raise UserError with the offending field's path when `config` breaks the schema, in
    time and memory in proportion to its text; return every variant's resolved settings
    (each sweep expanded once)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    _check_values(config)
    error = _most_specific(jsonschema.exceptions.best_match(Validator(schema).iter_errors(config)))
    if error is not None:
        raise UserError(f"config: {field_path(error)}: {_explain(error, schema)}")
    sweeps.check(config, schema["$defs"]["settings"])
    _check_variant_count(config)
    settings = resolved_settings(config)
    _check_sweep_cells(config, settings)
    _check_only(config, settings)
    for variant, resolved in settings.items():
        _check_combinations(variant, resolved)
        _check_resnet_options(variant, resolved)
        _check_stop_at(variant, resolved)
    for ladder, rungs in config.get("ladders", {}).items():
        _check_ladder(config, ladder, rungs, settings)
    _check_ladder_settings(config)
    _check_job_count(config, settings)
    return settings


def _check_values(config: dict) -> None:
    """Refuse what no schema keyword can, before anything walks the config: a NaN or an
    infinity (they pass every bound), a YAML alias inside its own anchor (an endless value),
    and more values than a config can need once aliases are expanded (a dozen lines of
    aliases can stand for a billion values, and a schema check walks them all)."""
    _expanded_size(config, (), {}, set())


def _expanded_size(node, path: tuple, sizes: dict[int, int], entered: set[int]) -> int:
    """How many values `node` stands for, aliases expanded. Each list or dict is walked once,
    however many aliases name it (`sizes` remembers it by identity): time in proportion to
    the YAML text, not to what it expands to."""
    if isinstance(node, float) and not math.isfinite(node):
        raise UserError(f"config: {_dotted(path)}: {node} is not a finite number")
    if not isinstance(node, dict | list):
        return 1
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in entered:
        raise UserError(f"config: {_dotted(path)}: a YAML alias inside its own anchor")
    entered.add(id(node))
    size = 1
    for key, child in node.items() if isinstance(node, dict) else enumerate(node):
        size += _expanded_size(child, (*path, key), sizes, entered)
        if size > MAX_CONFIG_VALUES:
            raise UserError(
                f"config: {_dotted(path)}: more than {MAX_CONFIG_VALUES} values once its YAML "
                "aliases are expanded (an alias bomb?)"
            )
    sizes[id(node)] = size
    return size


def _dotted(path: tuple) -> str:
    return ".".join(map(str, path)) or "(top level)"


def _most_specific(error: jsonschema.ValidationError | None) -> jsonschema.ValidationError | None:
    """Where jsonschema stops at "not valid under any of the given schemas" (a variant is
    settings or null; two errors in one field tie), the deepest error under it, a wrong type
    first: `batch_size: 1e30` is not an integer, whatever its maximum."""
    while error is not None and error.context:
        error = min(error.context, key=lambda e: (-len(e.absolute_path), e.validator != "type"))
    return error


def _explain(error: jsonschema.ValidationError, schema: dict) -> str:
    """Turn a schema error into a sentence; suggest the nearest key for a typo."""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        hints = [difflib.get_close_matches(key, allowed, n=1) for key in unknown]
        said = ", ".join(
            f"'{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            for key, hint in zip(unknown, hints, strict=True)
        )
        return f"unknown key {said}; allowed: {', '.join(allowed)}"
    if error.validator == "pattern" and list(error.absolute_path) == ["only"]:
        return (
            f"{error.instance!r} is not a comma-separated list of variant names "
            "(letters, digits, '.', '_', '-'; only=cpu,g-b16-w4)"
        )
    if error.validator == "pattern" and error.absolute_path and not _at(error, "md5"):
        return f"{error.instance!r} is not a valid name (letters, digits, '.', '_', '-')"
    if list(error.absolute_path) == ["only"] and error.instance is None:
        return "empty: name the variants (only=cpu,g-b16-w4), or leave only out to run them all"
    if error.validator == "type" and "boolean" in error.validator_value and _is_word(error):
        return f"{error.message} (--config reads True and False, capitalized, as booleans)"
    if error.validator == "type" and isinstance(error.instance, int) and _at(error, "md5"):
        return f"{error.message} (YAML read the all-digit md5 as a number: quote it)"
    if (
        error.validator == "enum"
        and isinstance(error.instance, bool)
        and "on" in error.validator_value
    ):
        return f'{error.message} (YAML reads a bare on/off as true/false: write "on" or "off")'
    return error.message


def _is_word(error: jsonschema.ValidationError) -> bool:
    return str(error.instance).lower() in ("true", "false")


def _at(error: jsonschema.ValidationError, key: str) -> bool:
    return bool(error.path) and error.path[-1] == key


def _check_variant_count(config: dict) -> None:
    """Counted before any sweep is expanded: a few lines of axes can make millions of cells."""
    count = len(config["variants"])
    for sweep, spec in (config.get("sweeps") or {}).items():
        cells = math.prod(len(values) for values in spec["axes"].values())
        count += cells
        if count > MAX_VARIANTS:
            shape = " x ".join(str(len(values)) for values in spec["axes"].values())
            raise UserError(
                f"config: sweeps.{sweep}: {cells} cells ({shape}) make {count} variants with "
                f"those before it; a config may define at most {MAX_VARIANTS}, hand-written "
                "and sweep cells together"
            )


def _check_job_count(config: dict, settings: dict[str, dict]) -> None:
    """A run trains each selected variant's replicates, a job each: refuse before Snakemake
    plans them one by one."""
    selected = selected_variants(config)
    jobs = sum(settings[name]["replicates"] for name in selected)
    if jobs > MAX_JOBS:
        raise UserError(
            f"config: the run would train {jobs} jobs ({len(selected)} variants and their "
            f"replicates), more than the {MAX_JOBS} a run may plan: select fewer variants "
            "with only=, or lower replicates"
        )


def _check_sweep_cells(config: dict, settings: dict[str, dict]) -> None:
    """Cells are valid variant names, clash with no hand-written variant, and a sweep's
    `baseline` is a variant or one of its cells."""
    for sweep, spec in (config.get("sweeps") or {}).items():
        for name in sweeps.cells(sweep, spec):
            if not VARIANT_NAME.fullmatch(name):
                raise UserError(f"config: sweeps.{sweep}: {name!r} is not a valid variant name")
            if name in config["variants"]:
                raise UserError(f"config: sweeps.{sweep}: {name} is also a hand-written variant")
        baseline = spec.get("baseline")
        if baseline is not None and baseline not in settings:
            raise UserError(f"config: sweeps.{sweep}.baseline: unknown variant {baseline!r}")


def _check_only(config: dict, settings: dict[str, dict]) -> None:
    unknown = [name for name in selected_variants(config) if name not in settings]
    if unknown:
        runs = [*(config.get("sweeps") or {}), *ladder_runs.runs(config)]
        known = [*config["variants"], *runs]
        raise UserError(f"config: only: {_unknown_names(unknown, known)}")


def unknown_target(config: dict, name: str) -> str:
    """Why results/<name>.json is no target: the nearest variant's name, or every one."""
    known = [*all_variants(config)]
    return (
        f"results/{name}.json: {_unknown_names([name], known)}; a variant's target is "
        "results/<variant>.json (leave targets out to run the whole study)"
    )


def _unknown_names(unknown: list[str], known: list[str]) -> str:
    """`unknown variant X (did you mean Y?)` for each name, or the known names when none is
    near enough to suggest."""
    hints = [difflib.get_close_matches(name, known, n=1, cutoff=0.75) for name in unknown]
    said = ", ".join(
        f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        for name, hint in zip(unknown, hints, strict=True)
    )
    listed = "" if all(hints) else f"; known: {', '.join(known)}"
    return f"unknown variant {said}{listed}"


def _check_combinations(variant: str, settings: dict) -> None:
    for (key, value), needs in NEEDS.items():
        if settings[key] != value:
            continue
        wrong = [other for other, wanted in needs.items() if settings[other] != wanted]
        if wrong:
            wanted = ", ".join(f"{other}: {json.dumps(needs[other])}" for other in wrong)
            has = ", ".join(f"{other}: {json.dumps(settings[other])}" for other in wrong)
            raise UserError(
                f"config: variants.{variant}: {key}: {as_written(value)} needs {wanted} "
                f"(it has {has})"
            )


def _check_resnet_options(variant: str, settings: dict) -> None:
    for key, default in RESNET_OPTIONS.items():
        if settings[key] != default and settings["model"] != "resnet":
            raise UserError(
                f"config: variants.{variant}: {key}: {settings[key]} needs model: "
                f'"resnet" (it has model: {json.dumps(settings["model"])})'
            )


def _check_stop_at(variant: str, settings: dict) -> None:
    """Stopping at an accuracy needs the accuracy after every epoch."""
    if settings["stop_at"] is not None and settings["evaluate"] != "every_epoch":
        raise UserError(
            f"config: variants.{variant}: stop_at: {settings['stop_at']} needs evaluate: "
            f"every_epoch (it has evaluate: {settings['evaluate']})"
        )


def _check_ladder(config: dict, ladder: str, rungs: list[str], settings: dict[str, dict]) -> None:
    """Each rung names a variant, once, and turns on exactly one setting more than the one
    below."""
    unknown = [rung for rung in rungs if rung not in config["variants"]]
    if unknown:
        raise UserError(f"config: ladders.{ladder}: unknown variant {', '.join(unknown)}")
    twice = [rung for rung, count in collections.Counter(rungs).items() if count > 1]
    if twice:
        raise UserError(f"config: ladders.{ladder}: {', '.join(twice)} appears twice")
    for rung in rungs:
        name = ladder_runs.rung_variant(ladder, rung)
        if not VARIANT_NAME.fullmatch(name) or name in config["variants"]:
            raise UserError(
                f"config: ladders.{ladder}: its own run's rung {name!r} is not a "
                "free variant name (64 characters at most)"
            )
    for below, rung in itertools.pairwise(rungs):
        changed = changed_settings(settings[below], settings[rung])
        if len(changed) != 1:
            raise UserError(
                f"config: ladders.{ladder}: {rung} must change one setting from {below}; "
                f"it changes {len(changed)}: {', '.join(changed) or 'none'}"
            )


def _check_ladder_settings(config: dict) -> None:
    """Each entry of `ladder_settings` names a ladder (a typo would silently run that ladder
    without its repeats)."""
    ladders = config.get("ladders") or {}
    for name in config.get("ladder_settings") or {}:
        if name not in ladders:
            raise UserError(
                f"config: ladder_settings.{name}: no ladder named {name!r} "
                f"(ladders: {', '.join(ladders) or 'none'})"
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
        variant: DEFAULT_BASELINES[settings["device"]]
        for variant, settings in resolved_settings(config).items()
    }
    for rungs in ladder_runs.runs(config).values():  # a ladder's own run: its stock rung
        chosen.update(dict.fromkeys(rungs, rungs[0]))
    for sweep, spec in (config.get("sweeps") or {}).items():
        if "baseline" in spec:
            chosen.update(dict.fromkeys(sweeps.cells(sweep, spec), spec["baseline"]))
    return chosen


def variant_settings(config: dict, variant: str) -> dict:
    """One variant's settings: `defaults`, then its changes, then the run-wide overrides
    (`epochs`, ...). For every variant at once, `resolved_settings`."""
    if variant in config["variants"]:
        return _resolved(config, config["variants"][variant])
    return _resolved(config, all_variants(config)[variant])


def resolved_settings(config: dict) -> dict[str, dict]:
    """Every variant's settings (as `variant_settings`), each sweep expanded once."""
    return {name: _resolved(config, changes) for name, changes in all_variants(config).items()}


def _resolved(config: dict, changes: dict | None) -> dict:
    settings = {**config["defaults"], **(changes or {})}
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
