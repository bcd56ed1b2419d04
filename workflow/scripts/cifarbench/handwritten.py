"""The study's Net, trained without autograd: its forward and backward pass written out.

At the study's batch of 4 a LeNet step on the CPU is mostly overhead rather than arithmetic,
and a quarter of it is autograd's: recording the graph in the forward pass, then the engine
walking its twenty-odd nodes and accumulating ten gradients. Here the forward pass keeps what
the backward pass needs and the backward pass calls the ATen operators that autograd itself
would call, in its order, so the gradients are the same bit for bit and so is every step of
the optimizer after them (tests/test_handwritten.py).
"""

import torch
from torch import nn
from torch.nn import functional as F

from cifarbench.models import Net

aten = torch.ops.aten

POOL = [2, 2]  # Net's max-pool: kernel and stride
NO_PADDING, UNIT = [0, 0], [1, 1]  # padding; stride and dilation
MEAN = 1  # nll_loss's reduction code for "mean"


class HandwrittenNet:
    """Computes the loss and gradients of a `Net` without batch norm; `loss_and_gradients`
    sets each parameter's `.grad`, as `loss.backward()` after `zero_grad(set_to_none=True)`
    would, for any torch.optim optimizer of `net.parameters()` to step on."""

    def __init__(self, net: Net):
        if not isinstance(net, Net) or not isinstance(net.bn1, nn.Identity):
            raise ValueError("the handwritten backward pass is Net's, without batch norm")
        self.params = dict(net.named_parameters())
        self.w = {name: p.detach() for name, p in self.params.items()}  # builds no graph

    def loss_and_gradients(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mean cross-entropy of `net(images)`; sets every parameter's `.grad` to its
        gradient."""
        logits, saved = self._forward(images)
        log_probs = torch.log_softmax(logits, 1)
        loss, total_weight = aten.nll_loss_forward(log_probs, labels, None, MEAN, -100)
        grad = aten.nll_loss_backward(
            torch.ones_like(loss), log_probs, labels, None, MEAN, -100, total_weight
        )
        grad = aten._log_softmax_backward_data(grad, log_probs, 1, log_probs.dtype)
        grads = self._backward(grad, saved)
        for name, param in self.params.items():
            param.grad = grads[name]
        return loss

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Net.forward, keeping each layer's input and what its backward pass needs."""
        w = self.w
        relu1 = torch.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"]))
        pool1, indices1 = F.max_pool2d(relu1, POOL, POOL, return_indices=True)
        relu2 = torch.relu(F.conv2d(pool1, w["conv2.weight"], w["conv2.bias"]))
        pool2, indices2 = F.max_pool2d(relu2, POOL, POOL, return_indices=True)
        features = torch.flatten(pool2, 1)
        hidden1 = torch.relu(F.linear(features, w["fc1.weight"], w["fc1.bias"]))
        hidden2 = torch.relu(F.linear(hidden1, w["fc2.weight"], w["fc2.bias"]))
        logits = F.linear(hidden2, w["fc3.weight"], w["fc3.bias"])
        saved = dict(
            x=x, relu1=relu1, indices1=indices1, pool1=pool1, relu2=relu2, indices2=indices2,
            pool2=pool2, features=features, hidden1=hidden1, hidden2=hidden2,
        )  # fmt: skip
        return logits, saved

    def _backward(self, grad: torch.Tensor, saved: dict) -> dict[str, torch.Tensor]:
        """Each parameter's gradient by name, from d(loss)/d(logits), output to input."""
        grads = {}
        grad = self._linear_backward(grad, saved["hidden2"], "fc3", grads)
        grad = self._linear_backward(grad, saved["hidden1"], "fc2", grads, saved["hidden2"])
        grad = self._linear_backward(grad, saved["features"], "fc1", grads, saved["hidden1"])
        grad = grad.view_as(saved["pool2"])
        grad = _pool_relu_backward(grad, saved["relu2"], saved["indices2"])
        grad = self._conv_backward(grad, saved["pool1"], "conv2", grads, input_grad=True)
        grad = _pool_relu_backward(grad, saved["relu1"], saved["indices1"])
        self._conv_backward(grad, saved["x"], "conv1", grads, input_grad=False)
        return grads

    def _linear_backward(self, grad, x, name, grads, relu_output=None):
        """Into `grads`: fc layer `name`'s, whose input was x and whose ReLU gave relu_output
        (fc3 has none). Returns the gradient of x."""
        if relu_output is not None:
            grad = aten.threshold_backward(grad, relu_output, 0)
        grads[f"{name}.weight"], grads[f"{name}.bias"] = grad.t().mm(x), grad.sum(0)
        return grad.mm(self.w[f"{name}.weight"])

    def _conv_backward(self, grad, x, name, grads, input_grad: bool):
        """Into `grads`: conv layer `name`'s, whose input was x. Returns the gradient of x
        when `input_grad` (conv1's input is the images: no gradient, no work)."""
        weight = self.w[f"{name}.weight"]
        # Arguments after the weight: bias sizes, stride, padding, dilation, transposed,
        # output padding, groups, which gradients to compute (input, weight, bias).
        grad_x, grads[f"{name}.weight"], grads[f"{name}.bias"] = aten.convolution_backward(
            grad, x, weight, [weight.shape[0]], UNIT, NO_PADDING, UNIT, False, NO_PADDING, 1,
            [input_grad, True, True],
        )  # fmt: skip
        return grad_x


def _pool_relu_backward(grad, relu, indices):
    """Back through max_pool2d(relu(conv)): to the pooled maxima, then through the ReLU."""
    grad = aten.max_pool2d_with_indices_backward(
        grad, relu, POOL, POOL, NO_PADDING, UNIT, False, indices
    )
    return aten.threshold_backward(grad, relu, 0)
