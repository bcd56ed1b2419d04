"""The installed packages work together: what `pip install -e .` can get wrong, and no other
test would name."""

import torch


def test_torch_and_torchvision_are_a_pair_built_for_each_other():
    """A torchvision built for another torch imports, then fails at its first compiled operator
    (RuntimeError: operator torchvision::nms does not exist). The study's loader imports
    torchvision; this names the cause before a training job meets it."""
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 1.9], [3.0, 3.0, 4.0, 4.0]])
    kept = nms(boxes, scores=torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert kept.tolist() == [0, 2]  # the second box overlaps the first: suppressed
