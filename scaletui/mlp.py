"""The batched MLP: layer sizes, activations and the forward pass every optimiser and reader shares.

Weights come as [W0, b0, W1, b1, ...] with an optional leading model dimension: W is (fan_in, fan_out)
and b is (1, fan_out), so ``x @ W + b`` serves one model or a stack of them.
"""

from __future__ import annotations

import math

import torch


def layer_sizes(input_dim: int, width: int, hidden_layers: int) -> list[int]:
    return [input_dim] + [width] * hidden_layers + [1]


TORCH_ACTIVATIONS = {
    "silu": torch.nn.functional.silu,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": torch.nn.functional.gelu,
    "sigmoid": torch.sigmoid,
}


def _silu_slope(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def _sigmoid_slope(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 - s)


def _gelu_slope(z: torch.Tensor) -> torch.Tensor:  # exact (erf) GELU, as torch's default
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


ACTIVATION_SLOPES = {
    "silu": _silu_slope,
    "relu": lambda z: (z > 0).to(z.dtype),
    "tanh": lambda z: 1 - torch.tanh(z) ** 2,
    "gelu": _gelu_slope,
    "sigmoid": _sigmoid_slope,
}


def forward(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """Outputs of all models: x is (batch, d) shared or (models, batch, d); returns (models, batch)."""
    act = TORCH_ACTIVATIONS[activation]
    h = x
    last = len(params) // 2 - 1
    for layer in range(last):
        h = act(torch.matmul(h, params[2 * layer]) + params[2 * layer + 1])  # (models, batch, fan_out)
    return output_layer(h, params[-2], params[-1])


def output_layer(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The last layer as a product and a sum over the last axis, not a matrix–vector product.

    A batched matrix–vector product rounds differently for different batch sizes; this reduction does
    not, so a model's output (and every decision Levenberg–Marquardt takes on it) does not depend on
    how many models it is batched with.
    """
    return (h * weight.transpose(-1, -2)).sum(dim=-1) + bias[..., 0]


def output_jacobian(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """d output / d weights of every model at every input, (models, n, P), columns in [W0, b0, W1, ...] order.

    Backpropagation written out for a stack of models: one pass gives every per-sample gradient at the cost
    of a few batched matmuls, where autograd would need a pass per sample.
    """
    act, slope = TORCH_ACTIVATIONS[activation], ACTIVATION_SLOPES[activation]
    layers = len(params) // 2
    models, n = params[0].shape[0], x.shape[-2]
    inputs, pre = [], []
    h = x.expand(models, *x.shape[-2:])
    for layer in range(layers):
        inputs.append(h)
        z = torch.matmul(h, params[2 * layer]) + params[2 * layer + 1]
        pre.append(z)
        h = act(z)
    delta = torch.ones(models, n, 1, dtype=h.dtype, device=h.device)  # d output / d z of the output layer
    blocks: list[torch.Tensor] = []
    for layer in reversed(range(layers)):
        weight_block = (inputs[layer][..., :, None] * delta[..., None, :]).reshape(models, n, -1)
        blocks[:0] = [weight_block, delta]
        if layer > 0:
            delta = torch.matmul(delta, params[2 * layer].transpose(-1, -2)) * slope(pre[layer - 1])
    return torch.cat(blocks, dim=-1)
