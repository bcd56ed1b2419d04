"""Static checks that are part of the suite: linters, and the conda env files (which cannot be
solved on machines without conda channels, so they are checked for what they must say)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO, SNAKEMAKE, copy_workflow

BIN = Path(sys.executable).parent
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_snakemake_lint_is_clean(tmp_path):
    # In a copy: the checkout's own results/ and config.local.yaml are not the test's.
    result = subprocess.run(
        [SNAKEMAKE, "--lint"], cwd=copy_workflow(tmp_path), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_rule_files_are_snakefmt_formatted():
    result = run(str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert result.returncode == 0, result.stderr


def test_python_is_ruff_clean():
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout
    result = run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout


def _rules() -> dict[str, str]:
    """Each rule's name -> its text, from every rule file."""
    rules = {}
    for path in [REPO / "Snakefile", *RULE_FILES]:
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            rules[match.group(1)] = match.group(2)
    return rules


def test_every_rule_that_runs_code_names_an_existing_env():
    rules = {name: body for name, body in _rules().items() if name != "all"}
    # unknown_variant runs nothing: it only turns a mistyped target into one line.
    rules.pop("unknown_variant")
    assert set(rules) == {"download", "prepare", "train", "summarize", "aggregate", "plot"}
    for name, body in rules.items():
        env = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
        assert env, f"rule {name} names no conda env"
        assert (REPO / "workflow" / "rules" / env.group(1)).resolve().is_file(), name


def _dependencies(env_file: str) -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / env_file).read_text())
    pins = {}
    for spec in env["dependencies"]:
        name, version = re.fullmatch(r"([\w.-]+)\s*([=<>!].*)?", spec).groups()
        pins[name] = (version or "").replace(" ", "")
    return pins


def test_training_env_pins_the_studys_cuda_11_8_build():
    env = yaml.safe_load((REPO / "envs" / "torch.yaml").read_text())
    assert env["channels"][:2] == ["pytorch", "nvidia"]
    pins = _dependencies("torch.yaml")
    assert pins["pytorch"] == "=2.4.0"
    assert pins["torchvision"] == "=0.19.0"
    assert pins["pytorch-cuda"] == "=11.8"
    assert pins["mkl"] == "<2024.1"  # PyTorch 2.4's conda build fails to import with newer MKL
    for name in ("psutil", "numpy", "pyyaml", "jsonschema"):
        assert name in pins


@pytest.mark.parametrize("env_file", ["torch.yaml", "analysis.yaml"])
def test_envs_pin_a_python_that_runs_snakemakes_script_preamble(env_file):
    version = _dependencies(env_file)["python"].lstrip("=")
    assert tuple(int(part) for part in version.split(".")[:2]) >= (3, 11)


def test_analysis_env_has_what_the_untimed_rules_import():
    pins = _dependencies("analysis.yaml")
    assert {"numpy", "pandas", "matplotlib", "seaborn", "scipy", "pyyaml", "jsonschema"} <= set(
        pins
    )
    assert "pytorch" not in pins
