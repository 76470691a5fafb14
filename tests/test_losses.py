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
    monkeypatch.setattr(losses._SoftmaxCrossEntropy, "apply", lambda q, i, t, chunk, first: seen.append(chunk))
    softmax_cross_entropy(torch.zeros(100, 3), torch.zeros(9, 3), torch.zeros(100, dtype=torch.int64))
    assert seen == [64]
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        softmax_cross_entropy(torch.zeros(4, 3), torch.zeros(9, 3), torch.zeros(4, dtype=torch.int64), chunk=0)


# bf16 products round the logits and the probabilities to 8 significant bits (relative 2^-9);
# over a batch that is about 1e-3 of the loss and of the gradients' norms, held here to 1e-2
BF16_TOLERANCE = 1e-2


@pytest.mark.parametrize("chunk", [1, 16, 64])
def test_bf16_loss_equals_fp32_in_value_and_gradient_within_the_stated_tolerance(chunk):
    gen = torch.Generator().manual_seed(5)
    query = torch.randn(100, 50, generator=gen, requires_grad=True)
    items = (0.3 * torch.randn(2000, 50, generator=gen)).requires_grad_()
    targets = torch.randint(0, 2000, (100,), generator=gen)
    grads = {}
    for precision in ("fp32", "bf16"):
        loss = softmax_cross_entropy(query, items, targets, chunk=chunk, precision=precision)
        grads[precision] = (loss.detach(), *torch.autograd.grad(2.0 * loss, (query, items)))
    want, got = grads["fp32"], grads["bf16"]
    assert got[0].dtype == torch.float32 and got[1].dtype == got[2].dtype == torch.float32
    assert abs(float(got[0] - want[0])) < BF16_TOLERANCE * float(want[0])
    for g, w in zip(got[1:], want[1:]):
        assert float((g - w).norm() / w.norm()) < BF16_TOLERANCE
    # and it is not fp32 in disguise: the rounding shows
    assert not torch.equal(got[1], want[1])


def test_bf16_linear_form_takes_the_bias_and_a_target_of_probability_zero_costs_a_finite_loss():
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(9, 6, generator=gen, requires_grad=True)
    layer = nn.Linear(6, 40)
    with torch.no_grad():
        layer.bias.uniform_(-3, 3)
    targets = torch.randint(0, 40, (9,), generator=gen)
    got = linear_softmax_cross_entropy(hidden, layer, targets, precision="bf16")
    want = F.cross_entropy(layer(hidden), targets)
    assert abs(float(got.detach() - want.detach())) < BF16_TOLERANCE * float(want.detach())
    # item 1 scores 200 below item 0: exp(-200) underflows, the loss is clamped, not infinite
    query = torch.tensor([[1.0]], requires_grad=True)
    items = torch.tensor([[100.0], [-100.0]])
    loss = softmax_cross_entropy(query, items, torch.tensor([1]), precision="bf16")
    assert torch.isfinite(loss) and float(loss.detach()) > 80
    loss.backward()
    torch.testing.assert_close(query.grad, torch.tensor([[200.0]]), rtol=BF16_TOLERANCE, atol=0)


def test_an_unknown_or_unresolved_precision_is_refused():
    args = torch.zeros(4, 3), torch.zeros(9, 3), torch.zeros(4, dtype=torch.int64)
    for bad in ("auto", "fp16"):
        with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
            softmax_cross_entropy(*args, precision=bad)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_whole_table_with_its_padding_row_excluded_equals_scoring_the_view_without_it(precision):
    gen = torch.Generator().manual_seed(7)
    query = torch.randn(21, 8, generator=gen, requires_grad=True)
    table = torch.randn(50, 8, generator=gen).requires_grad_()  # row 0: a padding row, no candidate
    targets = torch.randint(0, 49, (21,), generator=gen)
    whole = softmax_cross_entropy(query, table, targets, chunk=4, precision=precision, first=1)
    got = torch.autograd.grad(3.0 * whole, (query, table))
    view = softmax_cross_entropy(query, table[1:], targets, chunk=4, precision=precision)
    want = torch.autograd.grad(3.0 * view, (query, table))
    torch.testing.assert_close(whole, view)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    assert not got[1][0].any()  # the padding row: gradient 0
    # and against autograd's plain cross-entropy over the real rows, in fp32
    if precision == "fp32":
        plain = F.cross_entropy(query @ table[1:].T, targets)
        torch.testing.assert_close(whole, plain)
        torch.testing.assert_close(got[1], torch.autograd.grad(3.0 * plain, table)[0])


def test_the_gradients_are_handed_over_once_and_a_second_backward_is_refused():
    query = torch.randn(3, 4, requires_grad=True)
    table = torch.randn(6, 4, requires_grad=True)
    loss = softmax_cross_entropy(query, table, torch.tensor([0, 2, 4]), first=1)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        loss.backward()


def test_first_must_leave_a_candidate_row():
    query, table, targets = torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(2, dtype=torch.int64)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="first must leave at least one candidate row"):
            softmax_cross_entropy(query, table, targets, first=bad)


@pytest.mark.parametrize("method", ["narm", "stamp", "srgnn", "gcegnn"])
def test_each_prefix_models_item_embeddings_are_its_embedding_table_after_the_padding_row(method):
    # PrefixSoftmaxModel._item_softmax scores embedding.weight with first=1: the same rows
    from sessionbench.registry import resolve

    module = resolve(method)()._new_module(12, torch.Generator().manual_seed(0))
    weight = module.embedding.weight
    assert module.item_embeddings.shape == (12, weight.shape[1])
    assert module.item_embeddings.data_ptr() == weight[1:].data_ptr()
