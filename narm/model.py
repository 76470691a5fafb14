"""The NARM network: item embeddings, a GRU, the global and local encoders and the decoder.

Li, Ren, Chen, Ren, Lian, Ma. "Neural Attentive Session-based Recommendation." CIKM 2017.
Checked against the authors' Theano code, github.com/lijingsdu/sessionRec_NARM, ``NARM.py`` at
commit 4db2a4404eddd65523e4b4e1d26af1eba8846dce and ``rsc2015_attention.py`` at be0d1a37cc94,
and against RecBole's ``recbole/model/sequential_recommender/narm.py`` at f00b4071e574.

Equations (numbers as in the paper):

- (1)-(4) one GRU layer over the embedded clicks of the prefix (``nn.GRU``),
- (5) global encoder: c_g = h_t, the hidden state after the last click,
- (6) local encoder: c_l = sum_j alpha_tj h_j over the real clicks j of the prefix,
- (7)-(8) attention: alpha_tj = q(h_t, h_j) = v^T sigmoid(A1 h_t + A2 h_j),
- (9) hybrid: c_t = [c_g; c_l],
- (10) bi-linear decoder: S_i = emb_i^T B c_t, sharing the item embeddings with the input,
- (11) cross-entropy of softmax(S) against the clicked item (in ``narm/recommender.py``).

Row 0 of the embedding is padding: it stays zero, gets no gradient and is never scored, so
scores cover items 0..n_items-1 (embedding rows 1..n_items).

Deviations from the paper/reference:

- The GRU's gates use the logistic sigmoid of ``nn.GRU`` (the paper's eq. 2 and 4); the
  reference code used Theano's hard sigmoid, in the GRU and in the attention (eq. 8).
- ``nn.GRU`` has two bias vectors (input and recurrent) where the code has one; both start at 0.
- Attention weights are left unnormalised by default, as eq. 7-8 and RecBole; the reference
  code applies a softmax over the real positions (``attention_norm="softmax"`` reproduces it).
- The code's dropout scales at test time (non-inverted); ours scales at training time (inverted),
  which is the same in expectation. Dropout masks come from an explicit generator (SPEC 7).
- Initialisation follows the reference code (N(0, 2/fan) weights, orthogonal recurrent
  matrices, zero biases) with the fan taken as the code takes it; nothing in the paper says.
- The reference code also ranks the padding row (item id 0); here it is never scored.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from sessionbench.training import dropout

__all__ = ["ATTENTION_NORMS", "DECODERS", "ENCODERS", "NARMModule"]

ENCODERS = ("hybrid", "global", "local")
DECODERS = ("bilinear", "fc")
ATTENTION_NORMS = ("none", "softmax")


class NARMModule(nn.Module):
    """NARM and its ablations (paper Tables 2 and 4) as one module.

    Args:
        n_items: Number of items scored; the embedding has ``n_items + 1`` rows (row 0 = padding).
        embedding_size: Item embedding size (paper section 4.4: 50).
        hidden_size: GRU units (section 4.4: 100; Table 4 also uses 50).
        encoder: "hybrid" (c_t = [c_g; c_l], eq. 9), "global" (c_t = c_g, eq. 5) or "local"
            (c_t = c_l, eq. 6; h_t still queries the attention but has no direct path).
        decoder: "bilinear" (eq. 10, item embeddings shared) or "fc" (a fully connected layer
            U c_t + b over all items, Table 2's alternative).
        attention_norm: "none" (alpha as eq. 7 gives it) or "softmax" (the reference code).
        embedding_dropout: Dropout between the embeddings and the GRU (section 4.4: 25%).
        context_dropout: Dropout on c_t before the decoder (section 4.4: 50%).
        generator: Draws the initial weights (SPEC 7); None uses torch's default generator.
    """

    def __init__(
        self,
        n_items: int,
        embedding_size: int = 50,
        hidden_size: int = 100,
        encoder: str = "hybrid",
        decoder: str = "bilinear",
        attention_norm: str = "none",
        embedding_dropout: float = 0.25,
        context_dropout: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        choices = {"encoder": (encoder, ENCODERS), "decoder": (decoder, DECODERS)}
        for what, (value, allowed) in (choices | {"attention_norm": (attention_norm, ATTENTION_NORMS)}).items():
            if value not in allowed:
                raise ValueError(f"NARMModule: {what} must be one of {', '.join(allowed)}, got {value!r}")
        self.n_items, self.encoder, self.decoder, self.attention_norm = n_items, encoder, decoder, attention_norm
        self.embedding_dropout, self.context_dropout = embedding_dropout, context_dropout
        self.embedding = nn.Embedding(n_items + 1, embedding_size, padding_idx=0)
        self.gru = nn.GRU(embedding_size, hidden_size, batch_first=True)
        if encoder != "global":
            self.a1 = nn.Linear(hidden_size, hidden_size, bias=False)  # A1 of eq. 8, applied to h_t
            self.a2 = nn.Linear(hidden_size, hidden_size, bias=False)  # A2 of eq. 8, applied to h_j
            self.v = nn.Linear(hidden_size, 1, bias=False)  # v of eq. 8
        context = 2 * hidden_size if encoder == "hybrid" else hidden_size
        if decoder == "bilinear":
            self.B = nn.Linear(context, embedding_size, bias=False)  # B of eq. 10: |D| x |H|
        else:
            self.fc = nn.Linear(context, n_items)
        self._init_like_reference(generator)

    @torch.no_grad()
    def _init_like_reference(self, generator: torch.Generator | None) -> None:
        """The reference code's ``init_weights``: N(0, sqrt(2 / rows)) for a matrix stored as
        rows x columns in its (input x output) convention, orthogonal recurrent weights, zero
        biases."""

        def normal(weight: torch.Tensor, fan: int) -> None:
            weight.normal_(0.0, math.sqrt(2.0 / fan), generator=generator)

        emb = self.embedding.weight
        normal(emb, emb.shape[0])  # Wemb: (n_items, dim_proj) -> fan = n_items
        emb[0].zero_()
        hidden = self.gru.hidden_size
        normal(self.gru.weight_ih_l0, self.gru.input_size)  # Wxrz: (dim_proj, 3 hidden)
        for gate in range(3):  # Urz and Uh: one orthogonal matrix per gate
            nn.init.orthogonal_(self.gru.weight_hh_l0[gate * hidden : (gate + 1) * hidden], generator=generator)
        self.gru.bias_ih_l0.zero_()
        self.gru.bias_hh_l0.zero_()
        if self.encoder != "global":
            normal(self.a1.weight, hidden)
            normal(self.a2.weight, hidden)
            normal(self.v.weight, 1)  # bl_vector: (1, hidden)
        if self.decoder == "bilinear":
            normal(self.B.weight, self.B.out_features)  # bili: (dim_proj, 2 hidden)
        else:
            normal(self.fc.weight, self.fc.in_features)  # U: (2 hidden, n_items)
            self.fc.bias.zero_()

    def _gru(
        self, x: torch.Tensor, lengths: torch.Tensor, packed: bool, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hidden states of eq. 1-4 at the real clicks, with the embedding dropout of section
        4.4 applied to the GRU's inputs in training mode.

        Packed, the states are read straight from the packed output (no padded [B, L, H] copy
        is made, nor its gradient), h_t is the GRU's final state of each row, and the dropout
        masks cover the real clicks only: the same distribution for every real click, for a
        fifth of the random numbers on DIGINETICA.

        Returns:
            (h_j float[N, H] at every real click, h_t float[B, H], and the click's row and
            column, int64[N] each, in row-major order).
        """
        p = self.embedding_dropout if self.training else 0.0
        rows, cols = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).nonzero(as_tuple=True)
        if not packed:
            states = self.gru(dropout(x, p, generator))[0]
            return states[rows, cols], states[torch.arange(x.shape[0], device=x.device), lengths - 1], rows, cols
        seq = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        seq = seq._replace(data=dropout(seq.data, p, generator))
        out, last = self.gru(seq)
        # the packed output holds step 0 of every row (longest first), then step 1 of the rows
        # that have one, ...: click (row, col) sits at the start of step col plus the row's
        # rank by length
        start = (torch.cumsum(seq.batch_sizes, 0) - seq.batch_sizes).to(x.device)
        return out.data[start[cols] + seq.unsorted_indices[rows]], last[0], rows, cols

    def attend(
        self, real: torch.Tensor, last: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention weights alpha_tj (eq. 7-8) and the local representation c_l (eq. 6).

        Only the real positions are computed: a batch is as wide as its longest prefix (19
        clicks) while the average prefix has about 4, so the padded positions would be most
        of the work.

        Args:
            real: float[N, H] the hidden states h_j of the real clicks.
            last: float[B, H] the last real hidden state h_t of each row.
            rows, cols: int64[N] where each real click sits in the batch.
            shape: (B, L) of the batch.

        Returns:
            (alpha float[B, L], exactly 0 on padding; c_l float[B, H]).
        """
        # paper eq. 8: q(h_t, h_j) = v^T sigma(A1 h_t + A2 h_j)
        energy = self.v(torch.sigmoid(self.a1(last)[rows] + self.a2(real))).squeeze(-1)
        if self.attention_norm == "softmax":  # the reference code: a softmax over the real positions
            alpha = torch.full(shape, -math.inf, dtype=energy.dtype, device=energy.device)
            alpha = torch.softmax(alpha.index_put((rows, cols), energy), dim=1)
            energy = alpha[rows, cols]
        else:  # paper eq. 7: alpha_tj = q(h_t, h_j), real positions only
            alpha = energy.new_zeros(shape).index_put((rows, cols), energy)
        local = last.new_zeros(last.shape).index_add(0, rows, energy[:, None] * real)  # eq. 6
        return alpha, local

    def encode(
        self,
        items: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
        packed: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The session representation c_t and the attention weights.

        Args:
            items: int64[B, L] embedding rows (item index + 1), 0 = padding, left aligned.
            lengths: int64[B] real clicks per row, >= 1.
            generator: Draws the dropout masks in training mode.
            packed: Run the GRU on a packed sequence (skips padding) or on the padded batch;
                both give the same h_j at real clicks, since rows are left aligned and the GRU
                only looks back. Default: packed on the CPU, padded on a GPU, where one cuDNN
                call over the padding is faster than sorting and packing (and packing waits
                for the lengths to reach the CPU): with the same loss and optimiser, a step takes
                4.5 against 11.0 ms on an H200, 6.0 against 14.4 in a second run
                (``benchmarks/narm_speed.py --device cuda``, its first two configurations).

        Returns:
            (c_t float[B, C], alpha float[B, L] or None for the global encoder).
        """
        x = self.embedding(items)
        packed = items.device.type == "cpu" if packed is None else packed
        real, last, rows, cols = self._gru(x, lengths, packed, generator)  # last: paper eq. 5, c_g = h_t
        alpha = None
        if self.encoder == "global":
            context = last
        else:
            alpha, local = self.attend(real, last, rows, cols, tuple(items.shape))  # paper eq. 6-8
            context = torch.cat([last, local], dim=1) if self.encoder == "hybrid" else local  # eq. 9
        if self.training:
            context = dropout(context, self.context_dropout, generator)
        return context, alpha

    def query(self, context: torch.Tensor) -> torch.Tensor:
        """B c_t of eq. 10: float[B, D], the vector every item embedding is scored against."""
        return self.B(context)

    @property
    def item_embeddings(self) -> torch.Tensor:
        """float[n_items, D]: the embedding rows of real items (padding row excluded), a view."""
        return self.embedding.weight[1:]

    def scores(self, context: torch.Tensor) -> torch.Tensor:
        """S of eq. 10 (or the FC layer) for every item: float[B, n_items]."""
        if self.decoder == "fc":
            return self.fc(context)
        return self.query(context) @ self.item_embeddings.T  # paper eq. 10: S_i = emb_i^T B c_t

    def forward(
        self, items: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Scores of every item after each prefix: float[B, n_items] (see :meth:`encode`)."""
        return self.scores(self.encode(items, lengths, generator)[0])
