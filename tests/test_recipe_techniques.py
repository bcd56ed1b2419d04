"""The frontier recipe's techniques, each a setting of its own (issue 25): whitening filters,
weight decay on the weights only, a moving average of the weights, test-time flip averaging
and the ResNet's width. Each is tested on a constructed input for what it claims to compute."""

import copy
import dataclasses

import pytest
import torch
from torch.nn import functional as F

from cifarbench import config
from cifarbench.loop import Trainer, _moving_average, evaluate, predict, run_training
from cifarbench.models import WHITEN_EPS, ResNet, make_net, patch_eigens, whiten_stem
from cifarbench.optimizers import OPTIMIZERS
from cifarbench.settings import Settings
from workflow_helpers import config_refusal, shipped_config

RECIPE = Settings.from_dict(config.variant_settings(shipped_config(), "cpu-recipe-80"))


def correlated_images(count: int = 64) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are strongly correlated, as photographs'
    are: smoothed noise, the three channels mostly one signal."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(count, 1, 34, 34, generator=generator)
    smooth = F.avg_pool2d(base, 3, stride=1)  # 32 x 32, neighbours share most of their sum
    tint = torch.randn(count, 3, 32, 32, generator=generator) * 0.1
    return smooth.expand(-1, 3, -1, -1) + tint


def test_whitening_filters_decorrelate_the_patches_and_are_frozen():
    images = correlated_images()
    model = ResNet(width=16)
    whiten_stem(model, images)
    conv = model.stem[0]
    eigenvalues, _ = patch_eigens(images, 3)
    patches = F.conv2d(images, conv.weight[:8])  # valid positions only: every 3x3 patch
    responses = patches.permute(0, 2, 3, 1).reshape(-1, 8)
    covariance = torch.cov(responses.T.double())
    # The 8 strongest directions, each scaled to unit variance (less the eps airbench adds).
    strongest = eigenvalues.sort(descending=True).values[:8].double()
    expected = torch.diag(strongest / (strongest + WHITEN_EPS))
    assert torch.allclose(covariance, expected, atol=1e-3), covariance
    before = torch.cov(images.unfold(2, 3, 1).unfold(3, 3, 1)[:, 0].reshape(-1, 9).T)
    assert before[0, 1] > 0.5 * before[0, 0]  # the raw patches were far from white
    assert torch.equal(conv.weight[8:16], -conv.weight[:8])  # each direction's two signs
    assert not conv.weight.requires_grad


def test_whitening_reads_no_random_numbers():
    """The run's random streams (the batches' order, the augmentation) are untouched."""
    model, images = ResNet(), correlated_images(8)
    state = torch.random.get_rng_state()
    whiten_stem(model, images)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_flip_averaging_is_the_mean_of_both_predictions():
    torch.manual_seed(0)
    model = make_net("resnet").eval()
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        both = (model(images) + model(torch.flip(images, dims=[3]))) / 2
        assert torch.allclose(predict(model, images, tta=True), both)
        assert torch.equal(predict(model, images, tta=False), model(images))
        assert not torch.allclose(both, model(images))  # the mirror image says something else


def test_the_moving_average_follows_the_weights_with_its_decay():
    model = torch.nn.Linear(3, 2)
    average = _moving_average(model, 0.9)
    average.update_parameters(model)  # the first update copies the weights
    start = copy.deepcopy(model.weight.detach())
    with torch.no_grad():
        model.weight += 1.0
    average.update_parameters(model)
    assert torch.allclose(average.module.weight, 0.9 * start + 0.1 * (start + 1.0))
    assert _moving_average(model, None) is None


def test_weight_decay_on_weights_spares_batch_norm_and_biases():
    model = make_net("resnet")
    settings = dataclasses.replace(RECIPE, weight_decay_on="weights")
    optimizer = OPTIMIZERS["sgd"](model.parameters(), settings)
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == settings.weight_decay > 0
    assert all(p.ndim == 4 or p.ndim == 2 for p in decayed["params"])
    assert spared["weight_decay"] == 0 and all(p.ndim == 1 for p in spared["params"])
    norms = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {id(p) for p in norms} <= {id(p) for p in spared["params"]}
    everything = OPTIMIZERS["sgd"](
        model.parameters(), dataclasses.replace(RECIPE, weight_decay_on="all")
    )
    assert len(everything.param_groups) == 1  # torch.optim's own way: the stock optimizer


def test_width_sets_the_resnets_channels():
    model = make_net("resnet", width=24)
    convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [24, 48, 48, 96, 96]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_the_recipe_whitens_on_the_clock_and_scores_the_moving_average(learnable):
    """A replicate of the frontier recipe on a small archive: the stem is whitened before the
    first step and stays so (frozen); the test set is scored with the averaged weights."""
    settings = dataclasses.replace(RECIPE, epochs=1, batch_size=50, precision="fp32")
    trainer = Trainer(learnable, settings, torch.device("cpu"), seed=0)
    initial = trainer.model.stem[0].weight.detach().clone()
    record = run_training(trainer, learnable)
    whitened = trainer.model.stem[0].weight
    assert not torch.equal(whitened, initial) and not whitened.requires_grad
    assert torch.equal(trainer.scored_model.stem[0].weight, whitened)  # the average of frozen
    assert trainer.scored_model is trainer.average.module
    assert record["accuracy_pct"] == evaluate(trainer, learnable.test_images, learnable.test_labels)
    trained = dict(trainer.model.named_parameters())
    averaged = dict(trainer.scored_model.named_parameters())
    assert not torch.equal(trained["head.weight"], averaged["head.weight"])


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"whiten": True}, 'whiten: true needs model: "resnet" (it has model: "net")'),
        ({"width": 32}, 'width: 32 needs model: "resnet" (it has model: "net")'),
    ],
)
def test_the_resnets_options_on_another_model_are_refused(changes, refusal):
    shipped = shipped_config()
    shipped["variants"]["cpu"] = changes
    assert config_refusal(shipped) == f"config: variants.cpu: {refusal}"
