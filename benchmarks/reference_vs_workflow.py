"""The study's own script against the workflow's training job, side by side, on one machine.

Arms, each in its own Python process, one after the other, so that thread settings, worker
processes and memory do not leak from one into the next:

  study      benchmarks/study_script.py: the study's code written out (PIL + ToTensor +
             Normalize per image, a shuffling DataLoader with 2 workers, the tutorial's LeNet
             and loop), PyTorch's own thread count.
  <variant>  the workflow's training jobs for that config variant
             (cifarbench.in_process.run_variant, as Snakemake jobs given every core of this
             machine): by default `cpu`, then each rung of the CPU ladder up to `cpu-fast`. A
             variant may change settings after a slash, as in benchmarks/step_time.py:
             `cpu-recipe/precision=fp32`.

Training time spans the epoch loop in every arm; accuracy is over the test images. The
`cpu` arm must take the study's time (it runs the same code); each rung shows what its
optimization buys. Compare the ratios printed by one invocation, not times across
invocations: the machine's speed moves every arm between runs.

    .venv/bin/python benchmarks/reference_vs_workflow.py --cache resources/cifar10-$MD5.npz \
        --epochs 10
"""

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from cifarbench.config import spec_settings
from cifarbench.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
STUDY_SCRIPT = ROOT / "benchmarks" / "study_script.py"
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
DEFAULT_ARMS = ["study", *CONFIG["ladders"]["cpu"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", required=True, help="the prepared cache (resources/cifar10-<md5>.npz)"
    )
    parser.add_argument("--epochs", type=int, help="every arm's epochs (default: each its own)")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help="study and/or variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one workflow arm, in a child
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_workflow(args)), flush=True)
        return
    arms = args.arms.split(",")
    for arm in arms:  # a typo stops the benchmark before any arm has run
        if arm != "study":
            spec_settings(CONFIG, arm)
    results = [run_arm(arm, args) for arm in arms]
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """Run one arm in a fresh interpreter; its progress goes to stderr, its result to stdout."""
    common = ["--cache", str(args.cache), "--seed", str(args.seed)]
    if args.epochs:
        common += ["--epochs", str(args.epochs)]
    if arm == "study":
        command = [sys.executable, str(STUDY_SCRIPT), *common]
    else:
        command = [sys.executable, __file__, "--variant", arm, *common]
    print(f"--- {arm}", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return {"arm": arm, **json.loads(done.stdout.strip().splitlines()[-1])}


def run_workflow(args: argparse.Namespace) -> dict:
    from cifarbench.cache import load_cache
    from cifarbench.in_process import run_variant

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    settings = spec_settings(CONFIG, args.variant)
    settings.update(
        seed=args.seed, replicates=1, **({"epochs": args.epochs} if args.epochs else {})
    )
    threads = len(os.sched_getaffinity(0))  # as a Snakemake job given every core
    variant = args.variant.split("/")[0]
    document = run_variant(variant, load_cache(args.cache), settings, "cpu", threads)
    replicate = document["replicates"][0]
    return {
        "training_time_s": replicate["training_time_s"],
        "accuracy_pct": replicate["accuracy_pct"],
        "epoch_losses": [epoch["loss"] for epoch in replicate["epochs"]],
        "threads": document["environment"]["torch_threads"],
        "device": document["device"]["name"],
        "peak_cuda_allocated_mb": replicate["memory"]["cuda_peak_allocated_mb"],
    }


def table(results: list[dict], args: argparse.Namespace) -> str:
    by_arm = {r["arm"]: r for r in results}
    lines = [
        f"seed {args.seed}; {machine()}",
        f"{'arm':<26} {'threads':>7} {'epochs':>6} {'time s':>9} {'s/epoch':>8} {'acc %':>7} "
        f"{'/study':>7} {'/cpu':>7} {'same losses as study':>21}",
    ]
    for r in results:
        epochs = len(r["epoch_losses"])
        lines.append(
            f"{r['arm']:<26} {r['threads']:>7} {epochs:>6} {r['training_time_s']:>9.1f} "
            f"{r['training_time_s'] / epochs:>8.2f} {r['accuracy_pct']:>7.2f} "
            f"{_ratio(r, by_arm.get('study')):>7} {_ratio(r, by_arm.get('cpu')):>7} "
            f"{_same_losses(r, by_arm.get('study')):>21}"
        )
    return "\n".join(lines)


def _ratio(result: dict, baseline: dict | None) -> str:
    return f"{result['training_time_s'] / baseline['training_time_s']:.3f}" if baseline else ""


def _same_losses(result: dict, study: dict | None) -> str:
    return "" if study is None else str(result["epoch_losses"] == study["epoch_losses"])


def machine() -> str:
    from cifarbench.measure import cpu_model

    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores, {gpu_name()}"


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a typo in --arms: one line, before any arm has run
        sys.exit(str(error))
