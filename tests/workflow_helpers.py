"""Run the real workflow (the `snakemake` command) in a scratch copy of the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cifarbench.config import validate_config
from cifarbench.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "envs", "profiles"]
CONFIG_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
# Every run's figures (cifarbench.figures.draw_figures), in its report folder; each two-axis
# sweep in the run adds sweeps/<sweep>.png.
FIGURES = [
    "optimization_techniques_comparison.png",
    "loss_curves.png",
    "accuracy_vs_time.png",
    "optimization_ladder.png",
    "accuracy_curves.png",
]


def shipped_config() -> dict:
    """The repository's config.yaml, parsed afresh (a test may change its copy)."""
    return yaml.safe_load((REPO / "config.yaml").read_text())


def config_refusal(config: dict) -> str:
    """The one line with which the config check refuses `config` (the test fails if it
    accepts it)."""
    with pytest.raises(UserError) as error:
        validate_config(config, CONFIG_SCHEMA)
    return str(error.value)


def study_settings(**changes) -> dict:
    """The shipped config's `defaults` (the study's settings) with some changed."""
    return {**shipped_config()["defaults"], **changes}


def copy_workflow(dest: Path) -> Path:
    """A fresh copy of the workflow, so each test's results/ and resources/ are its own."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def data_workflow(root: Path, archive: Path, md5: str, train: int = 200, test: int = 50) -> Path:
    """A fresh copy of the workflow under `root`, with data.yaml pointing at `archive`."""
    workdir = copy_workflow(root / "wf")
    write_data_config(workdir / "data.yaml", archive, md5, train, test)
    return workdir


def write_data_config(path: Path, archive: Path, md5: str, train: int, test: int) -> Path:
    """A --configfile pointing the workflow at a local archive (the offline set-up)."""
    data = {"url": archive.as_uri(), "md5": md5, "train_size": train, "test_size": test}
    path.write_text(yaml.safe_dump({"data": data}))
    return path


# A guard against a hung run, not a speed check: the study fixture's run takes minutes on a
# quiet 2-core machine and several times that on a busy one.
SNAKEMAKE_TIMEOUT_S = 1800


def snakemake(
    workdir: Path, *args: str, timeout: int = SNAKEMAKE_TIMEOUT_S
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
