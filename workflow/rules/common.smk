# Config validation and per-variant lookups. The logic lives in the cifarbench library.
import re
import sys
from pathlib import Path

# Snakemake may be installed apart from the project (from conda, say), without `pip install -e .`:
# the Snakefile still imports the library from beside the scripts. (The `script:` rules need no
# such line: Snakemake puts each script's folder on their path.)
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from cifarbench.config import (
    TRAIN_BENCHMARK,
    baselines,
    heatmap_sweeps,
    ladder_rungs,
    nvidia_driver_loaded,
    report_dir,
    report_logs,
    selected_variants,
    unknown_target,
    validate_config,
)
from cifarbench.data_source import DATA_CHANGED, archive_path, cache_path, check_data_source
from cifarbench.errors import UserError
from cifarbench.invocation import check_config_files, check_report, requested_report
from cifarbench.settings import Settings

# What the user typed is checked by the Snakemake they started, not again in each job.
USER_COMMAND = workflow.is_main_process
if USER_COMMAND:
    check_config_files(workflow.overwrite_configfiles, Path.cwd())
# Every variant's resolved settings, each sweep expanded once: the lookups below run per job.
SETTINGS = validate_config(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)

VARIANTS = selected_variants(config)
# Each selected variant's baseline, for the table's comparisons.
BASELINES = {name: baseline for name, baseline in baselines(config).items() if name in VARIANTS}
# What each variant of this run is trained with: the table refuses a result trained otherwise.
RUN_SETTINGS = {name: SETTINGS[name] for name in VARIANTS}
HEATMAP_SWEEPS = heatmap_sweeps(config)
# Each ladder's rungs as this run trains them (its own run's, or the study's variants).
LADDERS = ladder_rungs(config)
REPORT_DIR = report_dir(config)
REPORT_LOGS = report_logs(config)
# The archive, its cache and every result are named by or record the archive's md5 (data.smk).
DATA_MD5 = config["data"]["md5"]
# Without an NVIDIA driver here, GPU variants that fall back to the CPU time the CPU.
HOST_HAS_NVIDIA_DRIVER = nvidia_driver_loaded()

if USER_COMMAND and not config.get(DATA_CHANGED):
    check_data_source(DATA_MD5)
if USER_COMMAND and requested_report(sys.argv):
    check_report(requested_report(sys.argv), REPORT_DIR, Path.cwd())

KNOWN_VARIANTS = "|".join(re.escape(name) for name in SETTINGS)


wildcard_constraints:
    variant=KNOWN_VARIANTS,
    seed=r"\d+",
    # Any other name of results/<name>.json, for rule unknown_variant.
    unknown=rf"(?!(?:{KNOWN_VARIANTS})\.json$)[^/]+",


def settings_of(wildcards):
    return dict(SETTINGS[wildcards.variant])


def no_such_variant(wildcards):
    """Rule unknown_variant's input: there is none, its target names no variant."""
    raise UserError(unknown_target(config, wildcards.unknown))


def seed_records(wildcards):
    """One training job per seed: a cluster runs them side by side, one machine in turn."""
    seeds = Settings.from_dict(settings_of(wildcards)).seeds
    return [f"results/seeds/{wildcards.variant}/seed{seed}.json" for seed in seeds]


# Interleaved rounds: seed k of every selected variant runs before seed k+1 of any, so a slow
# spell of the machine lands on every variant alike instead of on one. Snakemake runs the
# highest priority first; priorities stay positive (its ILP scheduler weighs a negative one
# against starting the job at all).
ROUNDS = max(Settings.from_dict(settings).replicates for settings in SETTINGS.values())


def round_priority(wildcards):
    """ROUNDS for every variant's first seed, one less for each seed after it."""
    first_seed = Settings.from_dict(settings_of(wildcards)).seed
    return ROUNDS - (int(wildcards.seed) - first_seed)


def times_the_cpu(variant):
    """Whether a training job's time is CPU time, so it must have every core to itself."""
    device = SETTINGS[variant]["device"]
    fell_back = not HOST_HAS_NVIDIA_DRIVER and config["gpu_fallback"] == "cpu"
    return device == "cpu" or fell_back


def train_threads(wildcards):
    """CPU timing jobs claim every core Snakemake was given (or train_threads); a GPU job
    claims its main process and its DataLoader workers."""
    if times_the_cpu(wildcards.variant):
        return config.get("train_threads") or workflow.cores
    return settings_of(wildcards)["workers"] + 1


def gpu_slots(wildcards):
    """A GPU variant holds the `gpu` resource, so GPU jobs queue for the card(s)."""
    return int(settings_of(wildcards)["device"] == "cuda")
