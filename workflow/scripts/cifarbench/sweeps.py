"""Sweeps: a base variant crossed with lists of setting values, expanded into ordinary variants.

    sweeps:
      batch-workers:
        base: cpu
        axes: {batch_size: [4, 8], workers: [0, 2]}

gives the variants `batch-workers.b4-w0`, `batch-workers.b4-w2`, `batch-workers.b8-w0` and
`batch-workers.b8-w2`: the base's settings, the sweep's `settings`, then the cell's values.
Snakemake's `Paramspace` maps a table of parameters to paths such as
`batch_size~4/workers~0`; here a cell must be a variant like any other (a name in the one
namespace that `only=`, targets, the CSV and the figures use), so sweeps expand to variants.
"""

import collections
import difflib
import itertools

import jsonschema

from cifarbench.errors import UserError
from cifarbench.schemas import Validator
from cifarbench.settings import as_written

# Short names of the settings sweeps most often vary, for readable cell names (b16-w4).
ABBREVIATIONS = {"batch_size": "b", "workers": "w", "lr": "lr", "epochs": "e"}


def cell_name(sweep: str, values: dict) -> str:
    """`<sweep>.<part>-<part>`: `b16` for abbreviated settings, `loader-tensor` for others."""
    parts = []
    for key, value in values.items():
        text = as_written(value)
        short = ABBREVIATIONS.get(key)
        parts.append(f"{short}{text}" if short else f"{key}-{text}")
    return f"{sweep}." + "-".join(parts)


def cells(sweep: str, spec: dict) -> dict[str, dict]:
    """Each cell's name -> its axis values, in the order of the axes' lists."""
    axes = spec["axes"]
    combinations = itertools.product(*axes.values())
    return {
        cell_name(sweep, dict(zip(axes, c, strict=True))): dict(zip(axes, c, strict=True))
        for c in combinations
    }


def expand(config: dict) -> dict[str, dict]:
    """Every sweep cell's name -> its settings changes from `defaults`."""
    variants = {}
    for sweep, spec in (config.get("sweeps") or {}).items():
        base = config["variants"][spec["base"]] or {}
        for name, values in cells(sweep, spec).items():
            variants[name] = {**base, **spec.get("settings", {}), **values}
    return variants


def check(config: dict, settings_schema: dict) -> None:
    """Refuse, naming the sweep and axis, an unknown base, an unknown setting, or a value the
    settings schema refuses, before any job runs (the schema has checked the shape)."""
    known = settings_schema["properties"]
    for sweep, spec in (config.get("sweeps") or {}).items():
        where = f"config: sweeps.{sweep}"
        if spec["base"] not in config["variants"]:
            raise UserError(f"{where}.base: unknown variant {spec['base']!r}")
        for axis, values in spec["axes"].items():
            if axis not in known:
                hint = difflib.get_close_matches(str(axis), known, n=1)
                said = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise UserError(f"{where}.axes: unknown setting '{axis}'{said}")
            _check_values(f"{where}.axes.{axis}", values, known[axis])


def _check_values(where: str, values: list, schema: dict) -> None:
    """Each value is one the setting takes, and is there once (each value is a cell's name)."""
    validator = Validator(schema)
    for value in values:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            raise UserError(f"{where}: {error.message}")
    # As JSON compares them: 1 and 1.0 are one value, true and 1 two.
    counts = collections.Counter((isinstance(value, bool), value) for value in values)
    twice = [value for (_, value), count in counts.items() if count > 1]
    if twice:
        raise UserError(f"{where}: {twice[0]!r} appears twice")
