"""Time per optimizer step of config variants at several thread counts, interleaved.

Each variant's Trainer (the training job's own loop) passes over the first --images training
images once per round at each thread count in turn, so a slow spell on a shared machine hits
every configuration alike. Prints the milliseconds per step of every pass, then the medians.

    .venv/bin/python benchmarks/step_time.py --cache resources/cifar10.npz --variants cpu,cpu-fast
"""

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

from cifarbench.archive import load_cache  # noqa: E402
from cifarbench.config import variant_settings  # noqa: E402
from cifarbench.progress import Progress  # noqa: E402
from cifarbench.train import Trainer, cpu_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="the prepared cache (cifar10.npz)")
    parser.add_argument("--variants", default="cpu,cpu-fast", help="comma-separated")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--images", type=int, default=8000, help="training images per pass")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    data = load_cache(args.cache)
    data = dataclasses.replace(
        data,
        train_images=data.train_images[: args.images],
        train_labels=data.train_labels[: args.images],
    )
    threads = [int(n) for n in args.threads.split(",")]
    times: dict[tuple[str, int], list[float]] = {}
    for variant in args.variants.split(","):
        settings = variant_settings(config, variant)
        _, onednn = cpu_settings(settings, torch.device("cpu"), 1)
        torch.backends.mkldnn.enabled = onednn  # as the training job sets it
        trainer = Trainer(data, settings, torch.device("cpu"), settings["seed"])
        with Progress(1, screen=None) as progress:
            trainer.train_epoch(1, progress)  # warm-up: allocator, worker start
            for _ in range(args.rounds):
                for n in threads:
                    torch.set_num_threads(n)
                    start = time.perf_counter()
                    trainer.train_epoch(1, progress)
                    ms = (time.perf_counter() - start) / len(trainer.batches) * 1000
                    times.setdefault((variant, n), []).append(ms)
    for (variant, n), passes in times.items():
        print(
            f"{variant:<16} {n} threads  median {statistics.median(passes):.3f} ms/step  "
            f"passes {' '.join(f'{t:.3f}' for t in passes)}"
        )


if __name__ == "__main__":
    main()
