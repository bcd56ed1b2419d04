"""Hostile configs: each is refused in one line, in seconds, before any job is planned; no
input makes the check itself slow or crash (a few lines of YAML aliases, a huge sweep, keys
that are not strings, a name ending in a newline)."""

import copy
import re
import time

import pytest
import yaml

from cifarbench import sweeps
from cifarbench.config import MAX_CONFIG_VALUES, MAX_JOBS, MAX_VARIANTS, validate_config
from workflow_helpers import (
    CONFIG_SCHEMA,
    config_refusal,
    copy_workflow,
    shipped_config,
    snakemake,
)

FEW_SECONDS = 5  # what each refusal may take; the inputs here took minutes, or forever, before

LAUGHS = """
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""  # i: a billion lol


def laughs(level: str = "i"):
    return yaml.safe_load(LAUGHS)[level]


def refused_quickly(config: dict) -> str:
    started = time.monotonic()
    refusal = config_refusal(config)
    assert time.monotonic() - started < FEW_SECONDS
    assert refusal.startswith("config: ") and "\n" not in refusal
    return refusal


@pytest.fixture
def config() -> dict:
    return shipped_config()


@pytest.mark.parametrize("where", ["junk", "variants.cpu.lr", "only", "sweeps.s.axes.lr"])
def test_an_alias_bomb_is_refused_without_being_expanded(config, where):
    *parents, last = where.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = laughs()
    if where.startswith("sweeps"):
        config["sweeps"]["s"]["base"] = "cpu"
    message = rf"config: {re.escape(where)}(\.0)+: more than 100000 values once its YAML aliases"
    assert re.match(message, refused_quickly(config))


def test_an_alias_bomb_within_the_cap_is_walked_once(config):
    """10^4 values through aliases: under the cap, so the schema names what is wrong."""
    config["variants"]["cpu"]["lr"] = laughs("d")
    assert "variants.cpu.lr: [[[" in refused_quickly(config)


def test_a_list_inside_itself_is_refused(config):
    endless = []
    endless.append(endless)  # what `a: &a [*a]` loads as
    config["only"] = endless
    assert refused_quickly(config) == "config: only.0: a YAML alias inside its own anchor"


def test_a_sweep_with_more_cells_than_a_config_may_have_is_refused_unexpanded(config):
    before = len(config["variants"]) + len(sweeps.expand(config))  # the shipped sweeps' cells
    config["sweeps"]["huge"] = {
        "base": "cpu",
        "axes": {"seed": list(range(100)), "lr": [0.1, 0.2, 0.3], "workers": list(range(100))},
    }
    assert refused_quickly(config).startswith(
        f"config: sweeps.huge: 30000 cells (100 x 3 x 100) make {before + 30000} variants with "
        f"those before it; a config may define at most {MAX_VARIANTS}"
    )


def test_many_sweeps_count_together(config):
    for n in range(4):
        config["sweeps"][f"s{n}"] = {"base": "cpu", "axes": {"seed": list(range(1500))}}
    assert refused_quickly(config).startswith("config: sweeps.s3: 1500 cells (1500) make ")


def test_a_large_sweep_within_the_cap_is_validated_in_seconds(config):
    """Validation was quadratic in the cells (7 s for 900, minutes for 4,000), even for a
    sweep the run does not select: each sweep is now expanded once."""
    shipped_cells = len(sweeps.expand(config))
    config["sweeps"]["big"] = {
        "base": "cpu",
        "axes": {"seed": list(range(100)), "batch_size": list(range(1, 41))},
    }
    started = time.monotonic()
    settings = validate_config(config, CONFIG_SCHEMA)
    assert time.monotonic() - started < FEW_SECONDS
    ladder_runs = sum(len(rungs) for rungs in config["ladders"].values())  # cpu-ladder.<rung>
    assert len(settings) == len(config["variants"]) + shipped_cells + 4000 + ladder_runs
    assert settings["big.seed-99-b40"]["batch_size"] == 40


def test_a_run_with_more_jobs_than_a_run_may_plan_is_refused(config):
    config["replicates"] = 1000
    assert refused_quickly(config) == (
        f"config: the run would train {1000 * len(config['variants'])} jobs "
        f"({len(config['variants'])} variants and their replicates), more than the {MAX_JOBS} "
        "a run may plan: select fewer variants with only=, or lower replicates"
    )
    config["only"] = "cpu"
    validate_config(config, CONFIG_SCHEMA)  # one variant, 1000 seeds: allowed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("replicates", 20000, "config: replicates: 20000 is greater than the maximum of 1000"),
        ("epochs", 10**6, "config: epochs: 1000000 is greater than the maximum of 10000"),
        ("variants.cpu.batch_size", 1e30, "config: variants.cpu.batch_size: 1e+30 is not of type"),
        ("variants.cpu.batch_size", 16.0, "config: variants.cpu.batch_size: 16.0 is not of type"),
        ("variants.cpu.batch_size", 10**6, "config: variants.cpu.batch_size: 1000000 is greater"),
        ("data.train_size", 1e30, "config: data.train_size: 1e+30 is not of type 'integer'"),
        ("data.train_size", 5_000_000, "config: data.train_size: 5000000 is greater than the"),
        ("data.test_size", 10**30, "config: data.test_size: 10000000000000000000000000000"),
        ("train_threads", 10**9, "config: train_threads: 1000000000 is greater than"),
        ("tag", "quick\n", "config: tag: 'quick\\n' is not a valid name"),
        ("only", "cpu\n", "config: only: 'cpu\\n' is not a comma-separated list"),
        ("data.md5", "c58f30108f718f92721af3b95e74349a\n", "config: data.md5: 'c58f30108f7"),
    ],
)
def test_a_number_or_name_out_of_bounds_is_refused(config, path, value, message):
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    assert refused_quickly(config).startswith(message)


@pytest.mark.parametrize("name", [123, True, None, 1.5, "cpu2\n"])
def test_a_variant_name_that_is_not_a_plain_string_is_refused(config, name):
    config["variants"][name] = {}
    assert refused_quickly(config).startswith("config: variants: ")


@pytest.mark.parametrize("section", ["sweeps", "ladders"])
def test_a_sweep_or_ladder_name_that_is_not_a_string_is_refused(config, section):
    config[section][7] = copy.deepcopy(next(iter(config[section].values())))
    assert refused_quickly(config).startswith(f"config: {section}: 7 is not of type 'string'")


def test_unknown_keys_of_several_types_are_named(config):
    config["variants"]["cpu"] = {123: 1, "batchsize": 2, None: 3}
    refusal = refused_quickly(config)
    assert refusal.startswith("config: variants.cpu: unknown key '123', 'None' ")
    assert "'batchsize' (did you mean 'batch_size'?)" in refusal


def test_an_axis_that_is_not_a_string_is_refused(config):
    config["sweeps"]["s"] = {"base": "cpu", "axes": {4: [1]}}
    assert refused_quickly(config).startswith("config: sweeps.s.axes: 4 is not of type 'string'")


def test_a_ladder_rung_named_twice_is_refused(config):
    config["ladders"]["cpu"].append("cpu")
    assert refused_quickly(config) == "config: ladders.cpu: cpu appears twice"


def test_every_schema_pattern_ends_at_the_end_of_the_text():
    """In Python, where the schema is checked, `$` also matches before a final newline."""
    patterns = re.findall(r"pattern: (.*)", CONFIG_SCHEMA.read_text())
    assert patterns and all(p.strip("'\"").endswith("\\Z") for p in patterns), patterns


def test_the_value_cap_leaves_room_for_real_configs(config):
    """The shipped config is far under the caps."""
    settings = validate_config(config, CONFIG_SCHEMA)
    assert len(settings) < MAX_VARIANTS / 50
    assert len(yaml.safe_dump(config).splitlines()) < MAX_CONFIG_VALUES / 50


@pytest.mark.slow
def test_snakemake_refuses_an_alias_bomb_in_one_line_in_seconds(tmp_path):
    """The real command, with a bomb in a --configfile: one line, no traceback."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bomb.yaml").write_text(LAUGHS.replace("\ni:", "\njunk:"))
    started = time.monotonic()
    run = snakemake(workdir, "-n", "--configfile", "bomb.yaml")
    assert time.monotonic() - started < 60  # Snakemake's own start-up included
    assert run.returncode != 0
    output = run.stdout + run.stderr  # a dry run reports on stdout
    assert re.search(
        r"^config: [a-z.0-9]+: more than 100000 values .*\(an alias bomb\?\)$", output, re.M
    )
    assert "Traceback" not in output, output[-3000:]
