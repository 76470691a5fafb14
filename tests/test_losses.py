import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sessionbench import losses
from sessionbench.losses import _default_chunk, linear_softmax_cross_entropy, softmax_cross_entropy


@pytest.mark.parametrize("chunk", [1, 8, 64])
def test_fused_softmax_cross_entropy_equals_autograd_in_value_and_gradient(chunk):
    gen = torch.Generator().manual_seed(2)
    query = torch.randn(37, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    items = (3 * torch.randn(61, 5, dtype=torch.float64, generator=gen)).requires_grad_()
    targets = torch.randint(0, 61, (37,), generator=gen)
    fused = softmax_cross_entropy(query, items, targets, chunk=chunk)
    (2.5 * fused).backward()  # an upstream gradient other than 1 must scale both gradients
    grads = query.grad.clone(), items.grad.clone()
    query.grad = items.grad = None
    plain = F.cross_entropy(query @ items.T, targets)  # NARM eq. 11
    (2.5 * plain).backward()
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(grads[0], query.grad)
    torch.testing.assert_close(grads[1], items.grad)


def test_linear_form_equals_cross_entropy_of_the_layer_bias_included():
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(13, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    targets = torch.randint(0, 30, (13,), generator=gen)
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


def test_default_chunk_is_cache_sized_on_the_cpu_and_the_whole_batch_elsewhere():
    assert _default_chunk(torch.empty(512, 50)) == 64
    # "meta" stands in for a GPU here: any device but the CPU takes the batch in one block
    assert _default_chunk(torch.empty(512, 50, device="meta")) == 512
    assert _default_chunk(torch.empty(0, 50, device="meta")) == 1
    assert _default_chunk(torch.empty(5000, 50, device="meta")) == 2048  # one block stays bounded


def test_no_chunk_takes_the_devices_default_and_a_chunk_below_one_is_refused(monkeypatch):
    seen = []
    monkeypatch.setattr(losses._SoftmaxCrossEntropy, "apply", lambda q, i, t, chunk: seen.append(chunk))
    softmax_cross_entropy(torch.zeros(100, 3), torch.zeros(9, 3), torch.zeros(100, dtype=torch.int64))
    assert seen == [64]
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        softmax_cross_entropy(torch.zeros(4, 3), torch.zeros(9, 3), torch.zeros(4, dtype=torch.int64), chunk=0)
