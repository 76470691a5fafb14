"""GRU4Rec: session-based recommendation with a GRU trained on session-parallel mini-batches.

Papers: Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with Recurrent
Neural Networks", ICLR 2016 (the NARM paper's "GRU-Rec"), and Hidasi & Karatzoglou, "Recurrent
Neural Networks with Top-k Gains for Session-based Recommendations", CIKM 2018 (extra negative
samples, the ranking-max losses, the constrained embedding). Reference code, read for every
detail below: github.com/hidasib/GRU4Rec_PyTorch_Official, ``gru4rec_pytorch.py`` at commit
4e7d23674cc3f1ea2fdee78246de11fbf6d47087 (with ``paramfiles/diginetica_bprmax_shared_best.py``),
and for TOP1, BPR and TOP1-max, which the PyTorch code dropped, the original Theano code
github.com/hidasib/GRU4Rec, ``gru4rec.py`` at commit 07f75a7a0c714ce39669757f1d895d1682117a69.
Our own code; nothing is copied.

What is computed (h: hidden state, B: sessions side by side, N_S: negatives of a row):

- Session-parallel mini-batches (ICLR 2016, Sec. 3.1.1): B sessions run side by side, one
  click per step; a slot whose session ends takes the next session, and its hidden state is
  reset to zero (:func:`session_parallel_schedule` plans a whole epoch at once). Gradients
  flow through one step only, as in the reference (the hidden state is detached every step).
- GRU step (ICLR 2016, Sec. 3; PyTorch ``GRUCell`` form): r = sigma(x_r + h_r),
  z = sigma(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) n + z h, where x = W_ih e + b_ih
  (or, for one-hot input, the row of a n_items x 3H input matrix) and h_* = W_hh h + b_hh.
- Input: one-hot (``embedding_size=0``), a separate embedding, or the constrained embedding
  (the reference's ``constrained_embedding``, CIKM 2018) that uses the output weights W_y as the
  input embedding. Scores: r_j = h . W_y[j] + b_y[j], then the final activation.
- Sampling on the output (ICLR 2016, Sec. 3.1.2; CIKM 2018, "Adding additional samples"): row
  i's target is column i; the other targets of the mini-batch are its negatives, plus
  ``n_negatives`` items drawn once per step with probability ~ support^``sample_alpha`` and
  shared by all rows.
- Losses (:data:`LOSSES`, one value per row; the step minimises their sum / ``batch_size``):
  TOP1 (ICLR 2016, Sec. 3.1.3): 1/N_S sum_j sigma(r_j - r_i) + sigma(r_j^2);
  BPR (ICLR 2016, Sec. 3.1.3): -1/N_S sum_j log sigma(r_i - r_j);
  TOP1-max (CIKM 2018, "Loss function design"): sum_j s_j (sigma(r_j - r_i) + sigma(r_j^2));
  BPR-max (same section): -log sum_j s_j sigma(r_i - r_j) + bpreg sum_j s_j r_j^2, with
  s = softmax over the negatives' scores; cross-entropy (same section): -log of the softmax of
  r_i over target + negatives, optionally with the logQ correction r_j - logq * log(Q_j)
  (Q: support of in-batch items, support^alpha of sampled ones). Training takes BPR-max's
  gradient from its closed form (``losses.training_loss``), equal to autograd's to rounding.
- Optimiser: Adagrad with momentum as the reference's ``IndexedAdagradM``:
  G += g^2, v = mu v - lr g / sqrt(G + 1e-6), w += v; the item tables (W_y, b_y, embeddings)
  are updated only in the rows the step touched (coalesced per row), as its sparse embeddings do.
- Initialisation (the reference's default "compatibility mode"): every n_in x n_out block is
  uniform on +-sqrt(6 / (n_in + n_out)); biases are zero. Dropout on the input embedding and on
  the GRU output (the dropped state is carried to the next step, as in the reference).
- Evaluation: each test prefix is fed from a zero state and every item is scored from the last
  hidden state; this equals the reference's session-parallel evaluation, which resets the state
  at every new session (checked by the tests).

Deviations from the paper/reference:

- One GRU layer only (the reference allows several; every published best setting uses one).
- Items are the training items, as in the reference (which maps only those); other item
  indices score :data:`UNSEEN_SCORE`, and a test click on such an item is skipped (the
  reference's evaluation filters those clicks out).
- Scores are ranked before the final activation. tanh and ELU are strictly increasing, so the
  order is the same, but float32 tanh saturates to exact ties that the conservative tie mode
  would count against the target.
- TOP1 and BPR average over the N_S negatives. The Theano code averages over all N_S + 1
  columns, the target's own constant term included: a factor N_S / (N_S + 1) on the gradient,
  which Adagrad's per-weight scaling cancels.
- One-hot input: dropout on the GRU output is ``dropout_hidden`` (as in the Theano code and the
  ICLR paper); the PyTorch code applies ``dropout_p_embed`` there instead. The one-hot GRU has a
  hidden-side bias b_hh like the other modes (the reference's one-hot cell has none).
- Cross-entropy uses log_softmax instead of log(softmax + 1e-24) (same value, no underflow).
- Sessions enter in the split's order (by time); the reference sorts by each session's first
  click. When sessions run out, slots retire as in the reference; their rows are simply no
  longer used (the reference compacts its hidden-state matrix, which is the same computation).
- Seeding: dropout masks and negative samples come from generators derived from ``seed``
  (SPEC 7) instead of numpy's global seed 42. A fit is bit-identical for a seed, a device and a
  thread count (other thread counts sum in another order). Rows gathered more than once in a
  step go through :func:`_take`: on the CPU, indexing's backward sums repeated rows with racing
  atomic adds as soon as torch splits it over threads (issue 20).
- ``precision="bf16"`` (or ``"auto"`` where bf16 is native), an option, not the default: the
  training step's products (W_ih e, W_hh h, the scores) take bf16 inputs, accumulated in fp32;
  the reference computes in fp32, as the default ``"fp32"`` does.

The package, one piece a file: ``batching.py`` (the item index, session-parallel mini-batches),
``losses.py`` (TOP1, BPR, their -max forms, cross-entropy), ``optimizer.py`` (Adagrad with
momentum), ``network.py`` (the GRU network, dropout, the negative sampler) and
``recommender.py`` (training and scoring: GRU4Rec) and ``tuned.py`` (GRU4RecTuned and the
official parameter files).
"""

from baselines.gru4rec.batching import UNSEEN_SCORE, SessionParallelSchedule, item_index, session_parallel_schedule
from baselines.gru4rec.losses import LOSSES
from baselines.gru4rec.network import GRU4RecNet, _NegativeSampler  # noqa: F401 - for tests
from baselines.gru4rec.optimizer import AdagradMomentum
from baselines.gru4rec.recommender import GRU4Rec, _reset_hidden, _take  # noqa: F401 - for tests
from baselines.gru4rec.tuned import GRU4RecTuned

__all__ = [
    "GRU4Rec",
    "GRU4RecTuned",
    "LOSSES",
    "AdagradMomentum",
    "SessionParallelSchedule",
    "UNSEEN_SCORE",
    "item_index",
    "session_parallel_schedule",
]

