"""Losses shared by the torch models: the full softmax cross-entropy over all items, fused.

NARM (eq. 10-11), its FC variant and Tan et al.'s improved GRU4Rec all end in a softmax over
every item. Computed the plain way, a mini-batch of 512 prefixes holds a [512, n_items] block
of logits and another of gradients (88 MB each on DIGINETICA) and runs through memory several
times; :func:`softmax_cross_entropy` computes the same value and gradient block by block while
the block is in cache (``benchmarks/narm_speed.py`` measures both).

With ``precision="bf16"`` (see :mod:`sessionbench.precision`) the three products take bf16
inputs and accumulate in fp32, and the softmax runs in fp32 over the bf16 logits, row by row.
"""

from __future__ import annotations

import torch
from torch import nn

from sessionbench.precision import RESOLVED

__all__ = ["linear_softmax_cross_entropy", "softmax_cross_entropy"]


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of softmax(query @ items.T) and its gradient in one pass.

    The logits of all items (512 x 43k floats on DIGINETICA, 88 MB) are never held at once:
    queries are taken ``chunk`` at a time, so that each block of logits stays in the CPU's
    cache while it is turned into probabilities and then into both gradients, and so that the
    allocator reuses one block instead of mapping (and page-faulting) 88 MB every step. Blocks
    are items x queries, the orientation in which all three products run fastest with MKL
    on this machine (``benchmarks/narm_speed.py``). The forward pass therefore already
    computes the backward pass's products; backward only scales them.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, query: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, chunk: int, first: int
    ) -> torch.Tensor:
        n = query.shape[0]
        items = table[first:]
        grad_query = torch.empty_like(query)
        grad_table = torch.zeros_like(table)
        grad_items = grad_table[first:]  # a view: the rows before ``first`` keep gradient 0
        loss = query.new_zeros(())
        for lo in range(0, n, chunk):
            q, t = query[lo : lo + chunk], targets[lo : lo + chunk]
            logits = items @ q.T  # paper eq. 10 for every item: [n_items, chunk]
            target_logit = logits[t, torch.arange(len(t), device=t.device)]
            top = logits.amax(dim=0)
            exp = logits.sub_(top).exp_()  # in place: one buffer for logits and exponentials
            total = exp.sum(dim=0)
            # paper eq. 11: -log softmax(S)_target = log sum_i exp(S_i) - S_target
            loss += (total.log() + top - target_logit).sum()
            # d loss / d logits = softmax - one-hot; the 1 / total of the softmax is applied to
            # the small factors instead of the big block, and the one-hot part comes below
            inv = total.reciprocal_()[:, None]
            torch.mm(exp.T, items, out=grad_query[lo : lo + chunk]).mul_(inv)
            grad_items.addmm_(exp, q * inv)
        grad_query -= items[targets]
        grad_items.index_add_(0, targets, query, alpha=-1.0)
        _keep_gradients(ctx, grad_query, grad_table, n)
        return loss / n

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:  # type: ignore[override]
        return (*_scaled_gradients(ctx, grad), None, None, None)


def _keep_gradients(ctx, grad_query: torch.Tensor, grad_table: torch.Tensor, n: int) -> None:
    """Hold the gradients of the batch's summed loss until backward scales them.

    They are kept on ``ctx`` as the intermediates they are (not ``save_for_backward``), so that
    backward can scale the table's gradient in place and hand the buffer itself to autograd:
    a table-sized gradient (4.3M floats on DIGINETICA) is then written once per step, where
    dividing by the batch in the forward pass and multiplying by the upstream gradient into a
    new tensor wrote it twice more.
    """
    ctx.gradients, ctx.n = (grad_query, grad_table), n


def _scaled_gradients(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if ctx.gradients is None:
        raise RuntimeError("the fused softmax cross-entropy's backward ran twice (retain_graph): its gradients are "
                           "scaled in place and handed over once; compute the loss again instead")
    (grad_query, grad_table), ctx.gradients = ctx.gradients, None
    # divided by n / grad: under the usual upstream gradient of 1, exactly the mean's gradient
    divisor = ctx.n / grad
    return grad_query.div_(divisor), grad_table.div_(divisor)


class _SoftmaxCrossEntropyBF16(torch.autograd.Function):
    """:class:`_SoftmaxCrossEntropy` with bf16 products: what the step costs where bf16 is native.

    Inputs are rounded to bf16 once per step; every product accumulates in fp32 (oneDNN on the
    CPU, tensor cores on a GPU) and rounds its output to bf16. Blocks are queries x items here,
    the layout in which ``torch.softmax`` runs one fused pass per row (the max, the exponentials
    and their sum in fp32 inside) and writes the probabilities in bf16, into one [B, n_items]
    buffer kept between steps (``_scratch``); the items' gradient is then one product over the
    whole buffer. The logits' product reads a transposed copy of the table, which runs twice
    as fast as the transposed view on this CPU (``benchmarks/narm_speed.py``).
    The loss is -log of the target's probability, which carries the bf16 rounding of the logits
    (relative 2^-9) and of that probability: about 1e-3 of the fp32 loss and gradient on random
    data (``tests/test_losses.py`` holds them to 1e-2).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, query: torch.Tensor, full: torch.Tensor, targets: torch.Tensor, chunk: int, first: int
    ) -> torch.Tensor:
        n = query.shape[0]
        items = full.detach()[first:]
        table, q16 = items.to(torch.bfloat16), query.detach().to(torch.bfloat16)
        table_t = table.T.contiguous()
        probs = _scratch((n, items.shape[0]), torch.bfloat16, query.device)
        grad_query = torch.empty(query.shape, dtype=torch.bfloat16, device=query.device)
        for lo in range(0, n, chunk):
            logits = torch.mm(q16[lo : lo + chunk], table_t)  # paper eq. 10 for every item: [chunk, n_items]
            p = torch.softmax(logits, dim=1, out=probs[lo : lo + chunk])  # paper eq. 11's softmax
            torch.mm(p, table, out=grad_query[lo : lo + chunk])
        target_p = probs[torch.arange(n, device=query.device), targets].float()
        # d loss / d logits = softmax - one-hot, as in the fp32 function
        grad_table = torch.empty(full.shape, dtype=full.dtype, device=full.device)
        grad_table[:first] = 0
        grad_items = grad_table[first:]
        grad_items.copy_(torch.mm(probs.T, q16))
        grad_items.index_add_(0, targets, query.detach(), alpha=-1.0)
        grad_query = grad_query.float().sub_(items[targets])
        _keep_gradients(ctx, grad_query, grad_table, n)
        # -log p; p is at least the smallest normal float, so that a target given probability 0
        # in bf16 costs 87.3 instead of an infinite loss (its gradient is exact either way)
        return -target_p.clamp_min_(torch.finfo(torch.float32).tiny).log_().mean()

    backward = _SoftmaxCrossEntropy.backward


_SCRATCH: dict[tuple, torch.Tensor] = {}


def _scratch(shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised buffer that the next call of the same shape gets again.

    The bf16 loss's probabilities are 44 MB at DIGINETICA scale, above what glibc's allocator
    keeps for reuse (32 MB): allocated afresh, every step would map new pages and fault them
    in, which took 15 of the loss's 50 ms here. Only the last shape is kept, so a training holds
    one such buffer (the last batch of an epoch, smaller, replaces it until the next epoch).
    """
    key = (shape, dtype, torch.device(device))
    buffer = _SCRATCH.get(key)
    if buffer is None:
        _SCRATCH.clear()
        buffer = _SCRATCH[key] = torch.empty(shape, dtype=dtype, device=device)
    return buffer


_GPU_CHUNK = 2048


def _default_chunk(query: torch.Tensor) -> int:
    # On the CPU a block of 64 x 43k logits stays in cache; on a GPU each block costs about ten
    # kernel launches, and the whole batch in one block is 3 times faster than blocks of 64 on an
    # H200 (benchmarks/narm_speed.py --device cuda: the loss's forward and backward at 512 x 43k
    # take 0.7 against 2.1 ms). The cap keeps one block under 350 MB at 43k items whatever the
    # batch size.
    return 64 if query.device.type == "cpu" else min(max(1, query.shape[0]), _GPU_CHUNK)


def softmax_cross_entropy(
    query: torch.Tensor,
    items: torch.Tensor,
    targets: torch.Tensor,
    chunk: int | None = None,
    precision: str = "fp32",
    first: int = 0,
) -> torch.Tensor:
    """Mean over the batch of -log softmax(query @ items[first:].T)[target] (NARM eq. 10-11; any full softmax over items).

    Equals ``F.cross_entropy(query @ items[first:].T, targets)`` (to float rounding) in value and
    gradient, with less memory traffic; the gradient is computed during the forward pass, so
    call it only where the loss is differentiated.

    Args:
        query: float[B, D], e.g. B c_t of NARM eq. 10.
        items: float[first + n_items, D], the item embeddings: a model's whole embedding table
            with ``first`` = 1 for its padding row, which is then no candidate and gets
            gradient 0. Passing the table itself rather than the view ``table[1:]`` spares
            autograd a table-sized copy of the gradient every step.
        targets: int64[B] item indices among the candidates (row ``first + target`` of ``items``).
        chunk: Queries scored at once (default: 64 on the CPU, where 64 x 43k floats = 11 MB
            fit a 32 MB L3 cache; on a GPU the whole batch, up to 2048 queries).
        precision: "fp32", or "bf16" for bf16 products accumulated in fp32 (what a model's
            ``precision="auto"`` resolves to where bf16 is native; see
            :mod:`sessionbench.precision`). The gradient is fp32 either way.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: ``chunk`` below 1, ``first`` outside the table, or a ``precision`` other than
            "fp32" and "bf16".
    """
    if chunk is None:
        chunk = _default_chunk(query)
    elif chunk < 1:
        raise ValueError(f"chunk must be at least 1 query, got {chunk}")
    if precision not in RESOLVED:
        raise ValueError(f"precision must be one of {', '.join(RESOLVED)} (resolve 'auto' first), got {precision!r}")
    if not 0 <= first < items.shape[0]:
        raise ValueError(f"first must leave at least one candidate row of the {items.shape[0]}-row table, got {first}")
    function = _SoftmaxCrossEntropyBF16 if precision == "bf16" else _SoftmaxCrossEntropy
    return function.apply(query, items, targets, chunk, first)


def linear_softmax_cross_entropy(
    hidden: torch.Tensor,
    linear: nn.Linear,
    targets: torch.Tensor,
    chunk: int | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """``F.cross_entropy(linear(hidden), targets)`` through :func:`softmax_cross_entropy`.

    The bias joins the weights as one more column, met by a column of ones in the query, so
    that W h + b is one product; the copy of the weights this makes is small next to the
    logits it avoids.

    Args:
        hidden: float[B, D] inputs of the layer.
        linear: The output layer, weight float[n_items, D] and bias float[n_items].
        targets: int64[B] item (row) indices.
        chunk, precision: As for :func:`softmax_cross_entropy`.
    """
    query = torch.cat([hidden, hidden.new_ones(hidden.shape[0], 1)], 1)
    table = torch.cat([linear.weight, linear.bias[:, None]], 1)
    return softmax_cross_entropy(query, table, targets, chunk, precision)
