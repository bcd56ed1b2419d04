"""The step profile: a variant's steps under torch.profiler, split into parts that add up to
the measured step time."""

import pytest
import torch

from cifarbench.loop import Trainer
from cifarbench.settings import Settings
from cifarbench.step_profile import PARTS, profile_trainer
from workflow_helpers import study_settings

CASES = {
    "stock, workers": dict(workers=1, batch_size=8),
    "tensor loader, handwritten backward": dict(
        loader="tensor", onednn="off", backward="handwritten", batch_size=8
    ),
}


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
def test_the_parts_add_up_to_the_measured_step_time(learnable, changes):
    settings = Settings(**study_settings(**changes))
    trainer = Trainer(learnable, settings, torch.device("cpu"), seed=0)
    profile = profile_trainer(trainer, warmup_steps=10, steps=120)
    parts = profile["parts"]
    assert list(parts) == [*PARTS, "rest"]
    total = sum(part["s"] for part in parts.values())
    assert total == pytest.approx(profile["step_s"], rel=0.10)
    assert all(part["s"] >= 0 for part in parts.values()), parts
    assert parts["backward"]["s"] > 0 and parts["optimizer"]["s"] > 0
    assert all(part["device_s"] == 0 for part in parts.values())  # no GPU: no device time
    operators = profile["top_operators"]
    assert 0 < len(operators) <= 10
    assert operators == sorted(operators, key=lambda op: op["self_s"], reverse=True)
    assert not any(op["name"].startswith("cifarbench.") for op in operators)


def test_an_autograd_step_has_a_forward_part_of_its_own(learnable):
    settings = Settings(**study_settings(loader="tensor", batch_size=8))
    trainer = Trainer(learnable, settings, torch.device("cpu"), seed=0)
    parts = profile_trainer(trainer, warmup_steps=2, steps=30)["parts"]
    assert parts["forward"]["s"] > 0 and parts["copy"]["s"] > 0
