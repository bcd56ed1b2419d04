"""The per-variant metrics JSON is a versioned contract: check it where it is written and read."""

import functools
from pathlib import Path

import jsonschema
import yaml

from cifarbench.config import field_path
from cifarbench.errors import UserError
from cifarbench.schemas import Validator
from cifarbench.settings import FIELDS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_PATH = SCHEMAS / "metrics.schema.yaml"


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
    return Validator({**settings, "required": list(FIELDS)})


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
