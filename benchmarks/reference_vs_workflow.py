"""The study's procedure, written out as the study wrote it, against the workflow's training code.

Three arms train on the same prepared cache with the study's settings (LeNet `Net`, batch 4,
SGD lr 0.001 momentum 0.9, cross-entropy, shuffled batches, --epochs epochs):

  reference  the study's code: a Dataset that turns each uint8 image into a PIL image, then
             torchvision ToTensor and Normalize((0.5,)*3, (0.5,)*3), a DataLoader with 2
             workers, the tutorial's LeNet and loop (zero_grad, forward, loss, backward, step,
             running loss printed every 2000 batches). PyTorch's own thread count, as the
             study ran it, unless --reference-threads says otherwise.
  default    the workflow's job for the `cpu` variant: cifarbench.train.run_variant with the
             config's defaults (the seed-faithful DataLoader path).
  fast       the same for the `cpu-fast` variant (the whole-set tensor path and the
             handwritten backward pass).

Each arm runs in its own Python process, one after the other, so that thread settings, worker
processes and memory do not leak from one into the next. Training time spans the epoch loop in
every arm; accuracy is over the 10,000 test images. The machine is the one the command runs on:
compare the ratios printed by one invocation, not times across invocations.

    .venv/bin/python benchmarks/reference_vs_workflow.py --cache resources/cifar10.npz --epochs 10
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

ARMS = ("reference", "default", "fast")
STUDY = {"batch_size": 4, "workers": 2, "lr": 0.001, "momentum": 0.9, "print_every": 2000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="the prepared cache (cifar10.npz)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of arms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reference-threads", type=int, help="torch threads of the reference (default: torch's)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # one arm, in a child
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(ARM_RUNNERS[args.arm](args)), flush=True)
        return
    results = [run_arm(arm, args) for arm in args.arms.split(",")]
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """Run one arm in a fresh interpreter; its progress goes to stderr, its result to stdout."""
    command = [sys.executable, __file__, "--arm", arm, "--cache", str(args.cache)]
    command += ["--epochs", str(args.epochs), "--seed", str(args.seed)]
    if args.reference_threads:
        command += ["--reference-threads", str(args.reference_threads)]
    print(f"--- {arm}", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the reference: the study's procedure ------------------------------------------------------


def run_reference(args: argparse.Namespace) -> dict:
    import torch
    from PIL import Image
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from cifarbench.archive import load_cache

    class CifarImages(Dataset):
        """The prepared uint8 arrays served as the study's torchvision dataset served them."""

        def __init__(self, images, labels, transform):
            self.images, self.labels, self.transform = images, labels, transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, index):
            image = Image.fromarray(self.images[index].transpose(1, 2, 0))  # CHW -> HWC
            return self.transform(image), int(self.labels[index])

    class Net(nn.Module):
        """The PyTorch tutorial's LeNet, as the study used it."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    if args.reference_threads:
        torch.set_num_threads(args.reference_threads)
    torch.manual_seed(args.seed)
    data = load_cache(args.cache)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    trainloader = DataLoader(
        CifarImages(data.train_images, data.train_labels, transform),
        batch_size=STUDY["batch_size"],
        shuffle=True,
        num_workers=STUDY["workers"],
    )
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=STUDY["lr"], momentum=STUDY["momentum"])

    start = time.perf_counter()
    for epoch in range(args.epochs):
        running_loss = 0.0
        for i, (inputs, labels) in enumerate(trainloader):
            optimizer.zero_grad()
            loss = criterion(net(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i % STUDY["print_every"] == STUDY["print_every"] - 1:
                mean = running_loss / STUDY["print_every"]
                print(f"[{epoch + 1}, {i + 1:5d}] loss: {mean:.3f}", file=sys.stderr, flush=True)
                running_loss = 0.0
    training_time = time.perf_counter() - start

    testloader = DataLoader(
        CifarImages(data.test_images, data.test_labels, transform),
        batch_size=1000,
        num_workers=STUDY["workers"],
    )
    correct = 0
    with torch.no_grad():
        for inputs, labels in testloader:
            correct += (net(inputs).argmax(1) == labels).sum().item()
    return {
        "arm": "reference",
        "training_time_s": training_time,
        "accuracy_pct": 100.0 * correct / len(data.test_labels),
        "threads": torch.get_num_threads(),
    }


# --- the workflow's code -----------------------------------------------------------------------


def run_workflow(args: argparse.Namespace, variant: str) -> dict:
    import logging

    import yaml

    from cifarbench.archive import load_cache
    from cifarbench.config import variant_settings
    from cifarbench.train import run_variant

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    settings = variant_settings(config, variant)
    settings.update(epochs=args.epochs, seed=args.seed, replicates=1)
    # As a Snakemake job given every core of this machine (train_threads: null).
    threads = len(os.sched_getaffinity(0))
    metrics = run_variant(variant, load_cache(args.cache), settings, "cpu", threads)
    summary = metrics["summary"]
    return {
        "arm": args.arm,
        "training_time_s": summary["training_time_s"]["mean"],
        "accuracy_pct": summary["accuracy_pct"]["mean"],
        "threads": metrics["environment"]["torch_threads"],
    }


ARM_RUNNERS = {
    "reference": run_reference,
    "default": lambda args: run_workflow(args, "cpu"),
    "fast": lambda args: run_workflow(args, "cpu-fast"),
}


# --- report ------------------------------------------------------------------------------------


def table(results: list[dict], args: argparse.Namespace) -> str:
    reference = next((r for r in results if r["arm"] == "reference"), None)
    lines = [
        f"{args.epochs} epochs, batch {STUDY['batch_size']}, lr {STUDY['lr']}, "
        f"seed {args.seed}; {machine()}",
        f"{'arm':<10} {'threads':>7} {'time s':>9} {'s/epoch':>8} {'acc %':>7} "
        f"{'time/ref':>9} {'acc-ref':>8}",
    ]
    for r in results:
        ratio = diff = ""
        if reference is not None:
            ratio = f"{r['training_time_s'] / reference['training_time_s']:.3f}"
            diff = f"{r['accuracy_pct'] - reference['accuracy_pct']:+.2f}"
        lines.append(
            f"{r['arm']:<10} {r['threads']:>7} {r['training_time_s']:>9.1f} "
            f"{r['training_time_s'] / args.epochs:>8.2f} {r['accuracy_pct']:>7.2f} "
            f"{ratio:>9} {diff:>8}"
        )
    return "\n".join(lines)


def machine() -> str:
    from cifarbench.measure import cpu_model

    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores"


if __name__ == "__main__":
    main()
