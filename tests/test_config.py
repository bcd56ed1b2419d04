"""Config validation: every mistake is caught before any job runs, naming the field."""

import copy
import re

import pytest

from cifarbench.config import (
    selected_variants,
    unknown_target,
    validate_config,
    variant_settings,
)
from cifarbench.errors import UserError
from workflow_helpers import REPO, shipped_config

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def config() -> dict:
    return shipped_config()


def test_shipped_config_is_valid_and_holds_the_study_variants(config):
    validate_config(config, SCHEMA)
    study = [
        "cpu",
        "g-initial",
        "g-torch.cuda.amp",
        "g-b8-w2",
        "g-b16-w4",
        "g-b32-w4",
        "g-b16w8",
        "g-bn",
        "g-lr",
        "g-simplecnn-adam",
    ]
    assert set(study) <= set(config["variants"])


def test_study_defaults_are_the_reports_procedure(config):
    s = variant_settings(config, "cpu")
    assert (s["model"], s["optimizer"], s["lr"], s["momentum"]) == ("net", "sgd", 0.001, 0.9)
    assert (s["batch_size"], s["workers"], s["epochs"], s["loader"]) == (4, 2, 10, "torchvision")
    assert variant_settings(config, "g-torch.cuda.amp")["precision"] == "fp16"
    assert variant_settings(config, "g-b16w8")["workers"] == 8


def test_variant_changes_and_run_wide_epochs_override(config):
    config["epochs"] = 2
    s = variant_settings(config, "g-b32-w4")
    assert (s["device"], s["batch_size"], s["workers"], s["epochs"]) == ("cuda", 32, 4, 2)


@pytest.mark.parametrize(
    ("only", "expected"),
    [(None, None), ("cpu,g-b16-w4", ["cpu", "g-b16-w4"]), (["g-bn"], ["g-bn"])],
)
def test_only_selects_variants_in_order(config, only, expected):
    config["only"] = only
    assert selected_variants(config) == (expected or list(config["variants"]))


def _set(config: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("variants.cpu.batchsize", 8, "variants.cpu: unknown key 'batchsize' (did you mean "),
        ("defaults.epohcs", 3, "defaults: unknown key 'epohcs' (did you mean 'epochs'?)"),
        ("variants.cpu.batch_size", 0, "variants.cpu.batch_size: 0 is less than the minimum"),
        ("variants.cpu.batch_size", "16", "variants.cpu.batch_size: '16' is not of type"),
        ("variants.cpu.epochs", 0, "variants.cpu.epochs: 0 is less than the minimum of 1"),
        ("variants.cpu.workers", -1, "variants.cpu.workers: -1 is less than the minimum"),
        ("variants.cpu.device", "tpu", "variants.cpu.device: 'tpu' is not one of"),
        ("variants.cpu.model", "resnet50", "variants.cpu.model: 'resnet50' is not one of"),
        ("variants.cpu.optimizer", "lamb", "variants.cpu.optimizer: 'lamb' is not one of"),
        ("variants.cpu.lr", -0.1, "variants.cpu.lr: -0.1 is less than or equal to"),
        ("gpu_fallback", "maybe", "gpu_fallback: 'maybe' is not one of"),
        ("data.md5", "abc", "data.md5: 'abc' does not match"),
        ("epochs", 0, "epochs: 0 is less than the minimum of 1"),
        ("variants.cpu.backward", "manual", "variants.cpu.backward: 'manual' is not one of"),
        (
            "variants.cpu.persistant_workers",
            True,
            "variants.cpu: unknown key 'persistant_workers' (did you mean 'persistent_workers'?)",
        ),
        ("variants.cpu.onednn", "auto-ish", "variants.cpu.onednn: 'auto-ish' is not one of"),
        ("variants.cpu.lr", float("nan"), "variants.cpu.lr: nan is not a finite number"),
        ("only", None, "only: empty: name the variants"),
        ("defaults.momentum", float("inf"), "defaults.momentum: inf is not a finite number"),
        ("variants.cpu.seed", 2**70, "variants.cpu.seed: 1180591620717411303424 is greater than"),
        ("variants.cpu.workers", 10_000, "variants.cpu.workers: 10000 is greater than the maximum"),
        ("data.md5", 12345678901234567890123456789012, "quote it"),
        (
            "variants.cpu-fast.model",
            "resnet",
            'variants.cpu-fast: backward: handwritten needs model: "net" (it has model: "resnet")',
        ),
        (
            "defaults.label_smoothing",
            0.1,
            "variants.cpu-fast: backward: handwritten needs label_smoothing: 0 (it has "
            "label_smoothing: 0.1)",
        ),
        (
            "variants.cpu-fast.precision",
            "bf16",
            'needs precision: "fp32" (it has precision: "bf16")',
        ),
    ],
)
def test_bad_config_is_rejected_with_the_field_path(config, path, value, message):
    _set(config, path, value)
    with pytest.raises(UserError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value).startswith("config: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["../evil", "has space", "a/b", ".hidden", ""])
def test_a_variant_name_that_cannot_be_a_file_name_is_rejected(config, name):
    config["variants"][name] = {}
    with pytest.raises(UserError, match=f"config: variants: '{re.escape(name)}' is not a valid"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("only", "message"),
    [
        # The study's own g-b16w8 has no hyphen before w8: the likely typo.
        ("cpu,g-b16-w8", "config: only: unknown variant 'g-b16-w8' (did you mean 'g-b16w8'?)"),
        (
            "batch-worker",
            "config: only: unknown variant 'batch-worker' (did you mean 'batch-workers'?)",
        ),
        ("gpu", "config: only: unknown variant 'gpu'; known: cpu, g-initial, g-torch.cuda.amp,"),
        ("cpu,,g-bn", "config: only: 'cpu,,g-bn' is not a comma-separated list of variant"),
    ],
)
def test_only_naming_an_unknown_variant_suggests_the_nearest_or_lists_them(config, only, message):
    config["only"] = only
    with pytest.raises(UserError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    if "did you mean" in message:  # one suggestion, not all 29 names
        assert "known:" not in str(error.value)


def test_a_lowercase_true_from_the_command_line_says_how_snakemake_reads_booleans(config):
    config["data_changed"] = "true"  # what `--config data_changed=true` gives
    with pytest.raises(UserError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value) == (
        "config: data_changed: 'true' is not of type 'null', 'boolean' (--config reads True and "
        "False, capitalized, as booleans)"
    )


def test_only_accepts_spaces_after_its_commas(config):
    config["only"] = "cpu, g-b16-w4 ,g-bn"
    validate_config(config, SCHEMA)
    assert selected_variants(config) == ["cpu", "g-b16-w4", "g-bn"]


def test_a_target_that_names_no_variant_says_which_one_was_meant(config):
    said = unknown_target(config, "g-b16-w8")
    assert said.startswith(
        "results/g-b16-w8.json: unknown variant 'g-b16-w8' (did you mean 'g-b16w8'?); "
        "a variant's target is results/<variant>.json"
    )
    assert "batch-workers.b4-w0" in unknown_target(config, "nothing-like-it")  # cells too


def test_validation_does_not_change_the_config(config):
    before = copy.deepcopy(config)
    validate_config(config, SCHEMA)
    assert config == before


def test_stop_at_without_per_epoch_accuracy_is_rejected(config):
    config["variants"]["quick"] = {"stop_at": 60, "evaluate": "end"}
    message = "variants.quick: stop_at: 60 needs evaluate: every_epoch (it has evaluate: end)"
    with pytest.raises(UserError, match=re.escape(message)):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("targets", [50, 150], "targets.1: 150 is greater than the maximum of 100"),
        ("targets", [0], "targets.0: 0 is less than or equal to the minimum of 0"),
        ("profile", {"warmup_steps": 2}, "profile: 'steps' is a required property"),
    ],
)
def test_bad_targets_or_profile_settings_are_rejected(config, key, value, message):
    config[key] = value
    with pytest.raises(UserError, match=re.escape(message)):
        validate_config(config, SCHEMA)
