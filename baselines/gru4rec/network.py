"""GRU4Rec's network, its dropout and its negative sampler (see the package docstring)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------- network


def _glorot_(tensor: torch.Tensor, fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform on +-sqrt(6 / (fan_in + fan_out)), the reference's initialisation of a block."""
    sigma = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-sigma, sigma, generator=generator)


class GRU4RecNet(nn.Module):
    """The network: item input (one-hot, embedding or constrained), one GRU layer, item scores.

    Args:
        n_items: Number of (training) items.
        hidden_size: GRU units H.
        embedding_size: 0 for one-hot input, else the size of a separate input embedding.
        constrained_embedding: Use the output weights as input embedding (then H-sized).
        generator: Source of the initial weights.
    """

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        embedding_size: int,
        constrained_embedding: bool,
        generator: torch.Generator,
    ):
        super().__init__()
        h = hidden_size
        self.constrained = constrained_embedding
        self.item_weight = nn.Parameter(_glorot_(torch.empty(n_items, h), n_items, h, generator))  # W_y
        self.item_bias = nn.Parameter(torch.zeros(n_items))  # b_y
        if constrained_embedding or embedding_size:
            n_in = h if constrained_embedding else embedding_size
            if not constrained_embedding:
                self.embedding = nn.Parameter(_glorot_(torch.empty(n_items, n_in), n_items, n_in, generator))
            self.weight_ih = nn.Parameter(_glorot_(torch.empty(3 * h, n_in), n_in, h, generator))
        else:  # one-hot input: row x of a n_items x 3H matrix is W_ih times the one-hot vector
            self.input_weight = nn.Parameter(_glorot_(torch.empty(n_items, 3 * h), n_items, h, generator))
        self.bias_ih = nn.Parameter(torch.zeros(3 * h))
        self.weight_hh = nn.Parameter(_glorot_(torch.empty(3 * h, h), h, h, generator))
        self.bias_hh = nn.Parameter(torch.zeros(3 * h))

    @property
    def one_hot(self) -> bool:
        return not hasattr(self, "weight_ih")

    def input_table(self) -> nn.Parameter:
        """The item table the input rows come from."""
        if self.constrained:
            return self.item_weight
        return self.input_weight if self.one_hot else self.embedding

    def project_input(self, rows: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """x = W_ih e + b_ih for input rows e (float[B, E]; for one-hot: rows of the input matrix);
        ``bf16``: the product from bf16 inputs (:func:`linear`)."""
        return rows + self.bias_ih if self.one_hot else linear(rows, self.weight_ih, self.bias_ih, bf16)

    def cell(self, x: torch.Tensor, h: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """One GRU step from projected input x (float[B, 3H]) and state h (float[B, H]); ``bf16``:
        W_hh h from bf16 inputs (:func:`linear`), the gates in fp32."""
        xr, xz, xn = x.chunk(3, 1)
        hr, hz, hn = linear(h, self.weight_hh, self.bias_hh, bf16).chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return n + z * (h - n)  # (1 - z) n + z h

    def step(self, items: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Evaluation step: next state after clicks on ``items`` (int64[B], compact indices)."""
        return self.cell(self.project_input(self.input_table()[items]), h)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """float[B, n_items]: h . W_y[j] + b_y[j] for every item, before the final activation."""
        return torch.addmm(self.item_bias, h, self.item_weight.T)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """float32 ``x @ weight.T + bias``; with ``bf16`` the product takes bf16 inputs (accumulated
    in fp32, its output rounded to bf16, as oneDNN's and the GPU's bf16 kernels do) and the bias is
    added in fp32. Its backward's products run in bf16 too; gradients reach fp32 tensors as fp32."""
    if not bf16:
        return F.linear(x, weight, bias)
    return bias + F.linear(x.to(torch.bfloat16), weight.to(torch.bfloat16))


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout with an explicit generator (F.dropout would use the global one)."""
    if p <= 0:
        return x
    # rand + compare: ~3x faster than bernoulli_ on the CPU
    keep = torch.rand(x.shape, generator=generator, device=x.device).lt_(1.0 - p)
    return x * keep.mul_(1.0 / (1.0 - p))


class _NegativeSampler:
    """Extra negatives drawn with probability ~ support^alpha, ``n`` per step, shared by the
    mini-batch (CIKM 2018, "Adding additional samples"); drawn a chunk of steps at a time like the reference's
    sample cache."""

    def __init__(self, counts: np.ndarray, alpha: float, n: int, rng: np.random.Generator, device: torch.device):
        weights = counts.astype(np.float64) ** alpha
        self.cdf = np.cumsum(weights) / weights.sum()
        self.cdf[-1] = 1.0
        self.n, self.rng, self.device = n, rng, device
        self.chunk = max(1, 2_000_000 // n)
        self.buffer: torch.Tensor | None = None
        self.next = 0

    def state_dict(self) -> dict[str, Any]:
        """The drawn chunk and the position in it (the generator is saved on its own)."""
        return {"buffer": self.buffer, "next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer = None if state["buffer"] is None else state["buffer"].to(self.device)
        self.next = state["next"]

    def __call__(self) -> torch.Tensor:
        if self.buffer is None or self.next == len(self.buffer):
            draws = np.searchsorted(self.cdf, self.rng.random(self.chunk * self.n), side="right")
            self.buffer = torch.from_numpy(draws.reshape(self.chunk, self.n)).to(self.device)
            self.next = 0
        self.next += 1
        return self.buffer[self.next - 1]


