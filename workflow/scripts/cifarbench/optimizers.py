"""The `optimizer` and `schedule` settings: torch.optim's own optimizers, a one-cycle factor."""

import torch

from cifarbench.settings import Settings


def lr_factor(step: int, total_steps: int, schedule: str, warmup: float) -> float:
    """Multiplier of the peak learning rate at `step`: constant, or linear up then down to 0."""
    if schedule == "constant":
        return 1.0
    warmup_steps = max(1, round(warmup * total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def _fused(settings: Settings) -> dict:
    """One kernel for all parameters; otherwise PyTorch's own choice (a loop over the
    parameters on the CPU, foreach kernels on CUDA)."""
    return {"fused": True} if settings.fused_optimizer else {}


def parameter_groups(parameters, settings: Settings) -> list:
    """The parameters as the optimizer sees them. `weight_decay_on: weights` decays the conv
    and linear weights only, not BatchNorm's scales and shifts or the biases (the 1-D
    parameters), as the fastest CIFAR-10 trainers do: decaying a scale that BatchNorm undoes
    anyway only changes the effective learning rate."""
    parameters = list(parameters)
    if settings.weight_decay_on == "all":
        return parameters
    groups = [
        {"params": [p for p in parameters if p.ndim > 1]},
        {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def _sgd(parameters, settings: Settings) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameter_groups(parameters, settings),
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        weight_decay=settings.weight_decay,
        **_fused(settings),
    )


def _adam(parameters, settings: Settings) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        parameter_groups(parameters, settings),
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        **_fused(settings),
    )


# The `optimizer` setting's values (the schema's enum equals these keys: tests/test_settings.py).
OPTIMIZERS = {"sgd": _sgd, "adam": _adam}
