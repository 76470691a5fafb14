import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sessionbench.losses import linear_softmax_cross_entropy, softmax_cross_entropy


def _inputs(seed=0, b=13, d=6, n=50):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(b, d, generator=g, dtype=torch.float64, requires_grad=True)
    items = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, n, (b,), generator=g)
    return query, items, targets


@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_fused_loss_and_gradients_equal_the_plain_cross_entropy(chunk):
    query, items, targets = _inputs()
    fused = softmax_cross_entropy(query, items, targets, chunk)
    got = torch.autograd.grad(fused, (query, items))
    plain = F.cross_entropy(query @ items.T, targets)
    want = torch.autograd.grad(plain, (query, items))
    torch.testing.assert_close(fused, plain)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_linear_form_equals_cross_entropy_of_the_layer_bias_included():
    hidden, _, targets = _inputs(seed=1, n=30)
    layer = nn.Linear(6, 30).double()
    with torch.no_grad():
        layer.bias.uniform_(-3, 3)  # a bias that matters
    fused = linear_softmax_cross_entropy(hidden, layer, targets, chunk=5)
    got = torch.autograd.grad(fused, (hidden, layer.weight, layer.bias))
    plain = F.cross_entropy(layer(hidden), targets)
    want = torch.autograd.grad(plain, (hidden, layer.weight, layer.bias))
    torch.testing.assert_close(fused, plain)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
