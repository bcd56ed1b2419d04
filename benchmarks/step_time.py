"""Time per optimizer step of config variants, interleaved, at one thread count.

Each variant's Trainer (the training job's own loop) passes over the first --images training
images once per round, the variants in turn, so a slow spell on a shared machine hits each
alike. Prints the milliseconds per step of every pass and their median. Compare thread counts
by alternating processes, one count each: switching counts inside one process flatters the
larger one (the idle OpenMP threads keep spinning).

    .venv/bin/python benchmarks/step_time.py --cache resources/cifar10-$MD5.npz --threads 1

A variant may change settings after a slash, to time one change on its own:
`--variants cpu-fast/backward=autograd,cpu-fast`.
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from cifarbench import runtime
from cifarbench.cache import load_cache
from cifarbench.config import spec_settings
from cifarbench.errors import UserError
from cifarbench.loop import Trainer
from cifarbench.progress import Progress
from cifarbench.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", required=True, help="the prepared cache (resources/cifar10-<md5>.npz)"
    )
    parser.add_argument(
        "--variants",
        default="cpu,cpu-fast",
        help="comma-separated; a variant may change settings: cpu-fast/backward=autograd",
    )
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--images", type=int, default=8000, help="training images per pass")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    data = load_cache(args.cache)
    data = dataclasses.replace(
        data,
        train_images=data.train_images[: args.images],
        train_labels=data.train_labels[: args.images],
    )
    torch.set_num_threads(args.threads)
    trainers = {}
    for spec in args.variants.split(","):
        settings = spec_settings(config, spec)
        trainers[spec] = Trainer(data, Settings(**settings), CPU, settings["seed"])
    times: dict[str, list[float]] = {variant: [] for variant in trainers}
    with Progress(1, screen=None) as progress:
        for round_ in range(args.rounds + 1):  # round 0 warms up: allocator, workers
            for variant, trainer in trainers.items():
                with runtime.backends(trainer.settings, CPU):  # as the training job sets them
                    start = time.perf_counter()
                    trainer.train_epoch(1, progress)
                if round_:
                    steps = len(trainer.batches)
                    times[variant].append((time.perf_counter() - start) / steps * 1000)
    for variant, passes in times.items():
        print(
            f"{variant:<28} {args.threads} threads  median {statistics.median(passes):.3f} "
            f"ms/step  passes {' '.join(f'{t:.3f}' for t in passes)}"
        )


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a typo in --variants, a bad cache: one line
        sys.exit(str(error))
