"""Static checks that are part of the suite: linters, and the conda env files (which cannot be
solved on machines without conda channels, so they are checked for what they must say)."""

import ast
import os
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
    assert set(rules) == {
        "download",
        "prepare",
        "train",
        "summarize",
        "aggregate",
        "plot",
        "profile_variant",
        "profile",
        "compare",
    }
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
    for name in ("psutil", "numpy", "nvidia-ml-py"):
        assert name in pins


def test_the_training_job_needs_neither_yaml_nor_jsonschema():
    """envs/torch.yaml carries neither: the train script's imports must not pull them in."""
    script = ast.parse((REPO / "workflow" / "scripts" / "train.py").read_text())
    imports = [
        ast.unparse(node) for node in script.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    code = "\n".join(
        [*imports, "import sys", "print(sorted({'yaml', 'jsonschema'} & set(sys.modules)))"]
    )
    library = str(REPO / "workflow" / "scripts")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": library},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


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


# What each hostile-input refusal says (the tests that provoke them: test_hostile_archives,
# test_archive*, test_download, test_config_caps, test_table_and_figures, test_atomic).
REFUSALS = [
    "more than 1000 entries",
    "extended (pax or long-name) headers of more than 1 MB in all",
    "more than 64 MB in members that are not CIFAR-10 batches",
    "builds more bytes than the pickle holds",
    "unexpected dict key",
    "label_names[i] should be a name, found",
    "still not complete after 3600 s",
    "redirects to a ftp:// URL",
    "redirected too often (a redirect loop?)",
    "a file:// URL names a file on this machine",
    "a file name cannot hold a NUL byte",
    "is not of type 'integer'",
    "more than 100000 values once its YAML aliases are expanded",
    "a YAML alias inside its own anchor",
    "a config may define at most 5000",
    "more than the 5000 a run may plan",
    "the disk filled while writing it",
    "cannot read metrics",
    "not a cifarbench seed record",
    "removed a symbolic link",
]


def test_the_readme_troubleshooting_table_names_each_refusal():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Troubleshooting") :]
    assert [refusal for refusal in REFUSALS if refusal not in table] == []
