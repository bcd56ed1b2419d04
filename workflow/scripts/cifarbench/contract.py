"""The per-variant metrics JSON is a versioned contract: check it where it is written and read."""

import functools
from pathlib import Path

import jsonschema
import yaml

from cifarbench.config import field_path
from cifarbench.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "metrics.schema.yaml"


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
