"""One home per setting: the `Settings` class, the config schema, `config.yaml`'s defaults, the
registries and the README cannot drift apart without a test failing here."""

import dataclasses
import re
import types
import typing

import pytest
import yaml

from cifarbench.data import LOADERS
from cifarbench.models import MODELS
from cifarbench.optimizers import OPTIMIZERS
from cifarbench.settings import Settings
from workflow_helpers import CONFIG_SCHEMA, REPO, config_refusal, shipped_config

SCHEMA = yaml.safe_load(CONFIG_SCHEMA.read_text())
SCHEMA_SETTINGS = SCHEMA["$defs"]["settings"]["properties"]
JSON_TYPES = {bool: "boolean", int: "integer", float: "number"}
FIELDS = {field.name: field for field in dataclasses.fields(Settings)}


def json_type(annotation) -> str | list[str]:
    """The schema's type for a field's annotation: `float | None` is ["null", "number"]."""
    if isinstance(annotation, types.UnionType):
        return [
            "null",
            *(JSON_TYPES[t] for t in typing.get_args(annotation) if t is not type(None)),
        ]
    return JSON_TYPES[annotation]


def test_the_schema_knows_exactly_the_settings_fields():
    assert list(SCHEMA_SETTINGS) == list(FIELDS)
    assert SCHEMA["properties"]["defaults"]["required"] == list(FIELDS)


@pytest.mark.parametrize("name", list(FIELDS))
def test_each_settings_schema_entry_matches_its_field(name):
    field, entry = FIELDS[name], SCHEMA_SETTINGS[name]
    choices = field.metadata["choices"]
    if choices:
        assert entry["enum"] == list(choices)
    else:
        assert entry["type"] == json_type(field.type)
    assert field.metadata["meaning"]


def test_config_defaults_are_the_settings_defaults_the_studys_code():
    assert shipped_config()["defaults"] == Settings().to_dict()


def test_every_default_is_stock_pytorch():
    """Each optimization is off by default: the study's code as it ran."""
    stock = Settings()
    assert (stock.loader, stock.onednn, stock.allocator, stock.backward) == (
        "torchvision",
        "on",
        "system",
        "autograd",
    )
    optimizations = (
        "pin_memory",
        "persistent_workers",
        "fused_optimizer",
        "cudnn_benchmark",
        "deferred_loss",
        "channels_last",
        "compile",
    )
    assert not any(getattr(stock, name) for name in optimizations)


@pytest.mark.parametrize(
    ("setting", "registry"), [("model", MODELS), ("optimizer", OPTIMIZERS), ("loader", LOADERS)]
)
def test_registries_are_the_schemas_enums(setting, registry):
    assert list(registry) == SCHEMA_SETTINGS[setting]["enum"]
    assert list(registry) == list(FIELDS[setting].metadata["choices"])


def test_the_readme_names_every_setting():
    readme = (REPO / "README.md").read_text()
    first_cells = re.findall(r"^\| (`\w+`(?:, `\w+`)*) \|", readme, re.M)
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    assert set(FIELDS) <= documented, sorted(set(FIELDS) - documented)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().lr = 1.0


def test_a_model_that_cannot_honour_a_setting_is_refused_naming_the_variant():
    config = shipped_config()
    config["variants"]["cpu-recipe"]["batch_norm"] = True
    assert config_refusal(config) == (
        "config: variants.cpu-recipe: model: resnet needs batch_norm: false "
        "(it has batch_norm: true)"
    )


def test_a_bare_on_or_off_gets_a_hint_to_quote_it():
    config = shipped_config()
    config["variants"]["cpu"] = {"onednn": False}  # what YAML makes of `onednn: off`
    assert re.search(r'variants.cpu.onednn: .*write "on" or "off"', config_refusal(config))
