"""Every per-variant setting, defined once: its name, type, allowed values, default, meaning.

The defaults are the study's code exactly as it ran (stock PyTorch): each optimization is a
setting that is off by default and earns its own row in the table. `config.yaml`'s `defaults:`
and the schema's `$defs.settings` are checked against this class by tests/test_settings.py.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def setting(default: Any, meaning: str, choices: tuple | None = None) -> Any:
    """A settings field with its one-line meaning and, for a word, the words it may be."""
    return field(default=default, metadata={"meaning": meaning, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # What is trained, and how: the study's procedure.
    device: str = setting("cpu", "where to train", ("cpu", "cuda"))
    model: str = setting(
        "net", "the study's LeNet, its SimpleCNN, or a small ResNet", ("net", "simplecnn", "resnet")
    )
    batch_norm: bool = setting(False, "BatchNorm after each conv and hidden fc layer")
    width: int = setting(16, "resnet: the stem's channels; each of its two stages doubles them")
    whiten: bool = setting(
        False,
        "resnet: the stem's filters set to whiten the training images' 3x3 patches, and frozen",
    )
    optimizer: str = setting("sgd", "torch.optim.SGD or torch.optim.Adam", ("sgd", "adam"))
    lr: float = setting(0.001, "peak learning rate")
    momentum: float = setting(0.9, "SGD momentum")
    nesterov: bool = setting(False, "Nesterov momentum")
    weight_decay: float = setting(0.0, "L2 weight decay")
    schedule: str = setting(
        "constant", "constant, or linear warm-up then linear decay to 0", ("constant", "onecycle")
    )
    warmup: float = setting(0.2, "onecycle: fraction of all steps spent warming up")
    weight_decay_on: str = setting(
        "all",
        "all: every parameter (torch.optim's way); weights: conv and linear weights only, not "
        "BatchNorm's scales and shifts or biases",
        ("all", "weights"),
    )
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing")
    batch_size: int = setting(4, "images per step")
    workers: int = setting(2, "DataLoader worker processes (torchvision and grouped loaders)")
    epochs: int = setting(10, "passes over the training set")
    precision: str = setting(
        "fp32",
        "fp16: autocast + GradScaler (the study's AMP); bf16: autocast",
        ("fp32", "fp16", "bf16"),
    )
    augment: bool = setting(False, "random flip + translate by up to 2 px, per batch")
    ema: float | None = setting(
        None, "decay of a moving average of the weights, updated every step; evaluation uses it"
    )
    tta: bool = setting(False, "each test image's prediction averaged with its mirror image's")
    seed: int = setting(0, "torch.manual_seed before the model is built")
    replicates: int = setting(1, "seeds seed, seed+1, ...; mean and std reported")
    log_every: int = setting(2000, "mini-batches between loss/memory log lines, as the study")
    # When the test set is scored (always off the clock) and whether training stops early.
    evaluate: str = setting(
        "every_epoch",
        "test accuracy after every epoch (time to target needs it), or only at the end",
        ("every_epoch", "end"),
    )
    stop_at: float | None = setting(
        None, "stop at the end of the first epoch whose test accuracy reaches this percent"
    )

    # Optimizations: each off (stock PyTorch) by default.
    loader: str = setting(
        "torchvision",
        "torchvision: each image through PIL + ToTensor + Normalize in a DataLoader (the study); "
        "grouped: workers send 256 prepared samples per request; tensor: the whole set on the "
        "device, batches gathered and normalized there",
        ("torchvision", "grouped", "tensor"),
    )
    pin_memory: bool = setting(False, "DataLoader batches in pinned memory, copied asynchronously")
    persistent_workers: bool = setting(False, "DataLoader workers live across epochs")
    fused_optimizer: bool = setting(False, "one fused optimizer kernel for all parameters")
    onednn: str = setting(
        "on",
        "oneDNN convolutions as PyTorch ships them (on), off, or off "
        "below batch 16 on the CPU (auto)",
        ("on", "off", "auto"),
    )
    allocator: str = setting(
        "system", "keep: glibc keeps freed memory instead of unmapping it", ("system", "keep")
    )
    cudnn_benchmark: bool = setting(False, "cuDNN times its kernels once per shape (CUDA)")
    deferred_loss: bool = setting(
        False,
        "losses stay on the device, read at log points only "
        "(the study's loss.item() syncs every step)",
    )
    backward: str = setting(
        "autograd",
        "handwritten: Net's own backward pass, the same gradients bit for bit",
        ("autograd", "handwritten"),
    )
    channels_last: bool = setting(False, "NHWC memory format for images and weights")
    compile: bool = setting(False, "torch.compile the model")

    @classmethod
    def from_dict(cls, values: dict) -> "Settings":
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def seeds(self) -> range:
        """The seeds a variant trains: seed, seed+1, ... one per replicate (a job each)."""
        return range(self.seed, self.seed + self.replicates)


def settings_hash(settings: dict) -> str:
    """A short stable fingerprint of resolved settings, to tell two results' recipes apart."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def changed_settings(below: dict, rung: dict) -> list[str]:
    """The settings whose values differ between two variants' resolved settings."""
    return [key for key in rung if rung[key] != below[key]]


# Changes that compute exactly the numbers of the variant without them: the same batches and
# the same arithmetic, only carried out another way. tests/test_ladder.py proves it for each
# ladder step that makes one of them.
SAME_NUMBERS = {
    ("loader", "grouped"),
    ("loader", "tensor"),
    ("allocator", "keep"),
    ("backward", "handwritten"),
    ("pin_memory", True),
    ("deferred_loss", True),
}


def computes_the_same(below: dict, rung: dict) -> bool:
    """Whether `rung` differs from `below` only by changes in SAME_NUMBERS."""
    changed = changed_settings(below, rung)
    return bool(changed) and all((key, rung[key]) in SAME_NUMBERS for key in changed)


def as_written(value) -> str:
    """A setting's value as config.yaml writes it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
