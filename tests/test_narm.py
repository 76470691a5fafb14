"""NARM: the equations against hand computation, the variants, a toy task that needs the
attention, determinism, bad input, and the recommender contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from narm import NARM, NARMFC, NARMGlobal, NARMLocal, NARMModule
from narm.attention import last_click_batch, select_sessions
from sessionbench.cases import truncate
from sessionbench.data import Sessions, Split
from sessionbench.evaluation import evaluate, rank_of_targets
from sessionbench.recommender import PAD, PrefixBatch, Recommender
from sessionbench.testing import RecommenderContract, as_numpy, oracle_split

TINY = {"embedding_size": 8, "hidden_size": 12, "epochs": 2, "batch_size": 64}
#: Tiny settings that still learn the oracle's A -> B in two epochs (the contract checks it).
LEARNS = {**TINY, "learning_rate": 0.01}


pytestmark = pytest.mark.usefixtures("one_thread")


def prefixes(*rows: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(rows))


# ------------------------------------------------------------------------- the equations by hand
def _module(encoder: str = "hybrid", norm: str = "none", decoder: str = "bilinear", seed: int = 0) -> NARMModule:
    gen = torch.Generator().manual_seed(seed)
    module = NARMModule(7, 3, 4, encoder=encoder, decoder=decoder, attention_norm=norm, generator=gen)
    with torch.no_grad():  # non-zero biases, so that their handling is checked too
        module.gru.bias_ih_l0.copy_(torch.linspace(-0.3, 0.3, 12))
        module.gru.bias_hh_l0.copy_(torch.linspace(0.2, -0.2, 12))
    return module.eval().double()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gru_by_hand(module: NARMModule, rows: list[int]) -> np.ndarray:
    """Hidden states of paper eq. 1-4 with torch's gate layout (r, z, n), float64[len, H]."""
    g = module.gru
    w_ih, w_hh = g.weight_ih_l0.detach().numpy(), g.weight_hh_l0.detach().numpy()
    b_ih, b_hh = g.bias_ih_l0.detach().numpy(), g.bias_hh_l0.detach().numpy()
    emb = module.embedding.weight.detach().numpy()
    H = g.hidden_size
    h, out = np.zeros(H), []
    for item in rows:
        gi, gh = w_ih @ emb[item + 1] + b_ih, w_hh @ h + b_hh
        r = _sigmoid(gi[:H] + gh[:H])  # eq. 4
        z = _sigmoid(gi[H : 2 * H] + gh[H : 2 * H])  # eq. 2
        candidate = np.tanh(gi[2 * H :] + r * gh[2 * H :])  # eq. 3
        h = z * h + (1 - z) * candidate  # eq. 1 (torch's z is the paper's 1 - z)
        out.append(h)
    return np.array(out)


def _encode(module: NARMModule, batch: PrefixBatch, packed: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        context, alpha = module.encode(torch.from_numpy(batch.items + 1), torch.from_numpy(batch.lengths), packed=packed)
    return context.numpy(), None if alpha is None else alpha.numpy()


ROWS = ([3, 1, 4, 1, 5], [2, 6], [0])


# packed: the CPU's default; padded: the GPU's, where the GRU also steps through the padding
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("norm", ["none", "softmax"])
def test_attention_is_zero_on_padding_and_local_is_the_weighted_sum_by_hand(norm, packed):
    module = _module(norm=norm)
    context, alpha = _encode(module, prefixes(*ROWS), packed)
    a1, a2, v = (m.weight.detach().numpy() for m in (module.a1, module.a2, module.v))
    for r, row in enumerate(ROWS):
        states = _gru_by_hand(module, row)
        h_t = states[-1]
        energy = np.array([(v @ _sigmoid(a1 @ h_t + a2 @ h_j)).item() for h_j in states])  # eq. 8
        expected = energy if norm == "none" else np.exp(energy) / np.exp(energy).sum()  # eq. 7 / the code
        np.testing.assert_allclose(alpha[r, : len(row)], expected, rtol=1e-9, atol=1e-12)
        assert (alpha[r, len(row) :] == 0).all()
        np.testing.assert_allclose(context[r, :4], h_t, rtol=1e-9, atol=1e-12)  # eq. 5
        np.testing.assert_allclose(context[r, 4:], expected @ states, rtol=1e-9, atol=1e-12)  # eq. 6


def test_the_cpu_packs_the_gru_input_unless_told_otherwise(monkeypatch):
    module, seen = _module(), []
    real = NARMModule._gru

    def recording(self, x, lengths, packed, generator):
        seen.append(packed)
        return real(self, x, lengths, packed, generator)

    monkeypatch.setattr(NARMModule, "_gru", recording)
    _encode(module, prefixes(*ROWS))
    _encode(module, prefixes(*ROWS), packed=False)
    assert seen == [True, False]


def test_bilinear_scores_are_emb_B_c_and_skip_the_padding_row():
    module = _module()
    context = torch.randn(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    emb, B = module.embedding.weight.detach(), module.B.weight.detach()  # B: [D, 2H]
    expected = torch.stack([torch.stack([emb[i + 1] @ B @ c for i in range(7)]) for c in context])  # eq. 10
    with torch.no_grad():
        scores = module.scores(context)
    assert scores.shape == (3, 7)
    torch.testing.assert_close(scores, expected)


def test_variants_differ_exactly_as_described():
    hybrid, glob, local = _module("hybrid"), _module("global"), _module("local")
    for other in (glob, local):  # the same GRU and attention weights everywhere
        shared = {k: v for k, v in hybrid.state_dict().items() if k in other.state_dict() and not k.startswith("B.")}
        other.load_state_dict(shared, strict=False)
    batch = prefixes(*ROWS)
    c_hybrid, _ = _encode(hybrid, batch)
    c_global, alpha_global = _encode(glob, batch)
    c_local, _ = _encode(local, batch)
    assert alpha_global is None and not hasattr(glob, "a1")  # global: no attention at all
    np.testing.assert_array_equal(c_global, c_hybrid[:, :4])  # global = h_t only
    np.testing.assert_array_equal(c_local, c_hybrid[:, 4:])  # local = attention sum only, no h_t path
    assert glob.B.in_features == local.B.in_features == 4 and hybrid.B.in_features == 8
    fc = _module(decoder="fc")
    assert not hasattr(fc, "B") and fc.fc.out_features == 7
    with torch.no_grad():
        c = torch.ones(2, 8, dtype=torch.float64)
        torch.testing.assert_close(fc.scores(c), c @ fc.fc.weight.T + fc.fc.bias)


def test_variants_are_registered_with_their_suites():
    from sessionbench.registry import resolve

    assert resolve("narm") is NARM and NARM.suites == ("main", "ablations") and NARM.paper_row == "NARM"
    variants = [("narm-global", NARMGlobal, "global", "bilinear"), ("narm-local", NARMLocal, "local", "bilinear")]
    for name, cls, encoder, decoder in [*variants, ("narm-fc", NARMFC, "hybrid", "fc")]:
        assert resolve(name) is cls and cls.suites == ("ablations",)
        assert (cls.encoder, cls.decoder) == (encoder, decoder)
    assert NARM.paper_tables == {"table2": "bi-linear", "table4": "hybrid"}
    assert NARMFC.paper_tables == {"table2": "fully connected"}
    assert [p["hidden_size"] for p in NARMLocal.suite_params["ablations"]] == [50, 100]


# ------------------------------------------------------------------------------- truncation
def test_truncate_keeps_the_last_or_first_clicks():
    batch = prefixes([1, 2, 3, 4, 5], [6, 7])
    last, first = truncate(batch, 3, "last"), truncate(batch, 3, "first")
    np.testing.assert_array_equal(last.items, [[3, 4, 5], [6, 7, PAD]])
    np.testing.assert_array_equal(first.items, [[1, 2, 3], [6, 7, PAD]])
    np.testing.assert_array_equal(last.lengths, [3, 2])


def test_attention_columns_follow_the_clicks_of_a_truncated_prefix():
    split = oracle_split()
    rec = NARM(**TINY, max_length=3).fit(split, seed=0, progress=False)
    batch = prefixes([5, 6, 7, 8, 9], [4, 5])
    alpha = rec.attention(batch)
    assert alpha.shape == (2, 5)
    assert (alpha[0, :2] == 0).all() and (alpha[0, 2:] != 0).all()  # the first two clicks were cut
    assert (alpha[1, 2:] == 0).all() and (alpha[1, :2] != 0).all()  # padding
    inner = rec.attention(prefixes([7, 8, 9]))
    np.testing.assert_allclose(alpha[0, 2:], inner[0], rtol=1e-5)


# ------------------------------------------------------------------- the attention must find it
def first_click_split(n_keys: int = 60, n_noise: int = 150, n_train: int = 1500, n_test: int = 300) -> Split:
    """Sessions [key, 4-9 random noise clicks, answer(key)]: the last click depends only on the
    FIRST one, which a last-state model must carry through the noise."""
    rng = np.random.default_rng(0)

    def make(n: int, t0: float) -> Sessions:
        out = []
        for _ in range(n):
            key = int(rng.integers(n_keys))
            noise = 2 * n_keys + rng.integers(0, n_noise, int(rng.integers(4, 10)))
            out.append([key, *noise.tolist(), n_keys + key])
        return Sessions.from_lists(out, times=t0 + np.arange(n, dtype=np.float64))

    n_items = 2 * n_keys + n_noise
    return Split("first-click", make(n_train, 0.0), make(n_test, float(n_train)), n_items, np.arange(n_items))


def test_narm_learns_a_next_click_that_depends_on_the_first_click():
    split = first_click_split()
    batch = last_click_batch(split.test, np.arange(len(split.test)))  # full prefix -> answer(key)
    recall = {}
    for cls in (NARM, NARMGlobal):  # NARMGlobal: a GRU4Rec-style last-state model
        rec = cls(embedding_size=25, hidden_size=50, epochs=10, patience=None, batch_size=128)
        rec.fit(split, seed=0, progress=False)
        recall[cls.name] = float((rank_of_targets(rec.score(batch), batch.targets) <= 20).mean())
    assert recall["narm"] >= 0.9
    assert recall["narm"] >= recall["narm-global"] + 0.1


def test_packed_embedding_dropout_draws_masks_for_the_real_clicks_only(monkeypatch):
    module, inputs = _module(), []
    module.embedding_dropout = 0.5
    real_gru = module.gru.forward
    monkeypatch.setattr(module.gru, "forward", lambda seq, *a: inputs.append(seq.data) or real_gru(seq, *a))
    module.train()
    batch = prefixes(*ROWS)
    _encode(module, batch, packed=True)
    (data,) = inputs
    assert data.shape == (int(batch.lengths.sum()), module.embedding.embedding_dim)  # the real clicks, no padding
    kept = data != 0
    assert 0.3 < float(kept.float().mean()) < 0.7
    # each kept value is a real click's embedding value scaled by 1 / (1 - p) = 2
    clicks = np.concatenate([row[:n] for row, n in zip(batch.items, batch.lengths)]) + 1
    values = module.embedding.weight[torch.from_numpy(clicks)].detach().flatten()
    assert bool(torch.isin(data[kept].detach() / 2, values).all())


# ------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fixed_seed_gives_identical_metrics_twice(precision):
    split = oracle_split()
    runs = [evaluate(NARM(**TINY, precision=precision).fit(split, seed=3, progress=False), split.test, progress=False).metrics for _ in "ab"]
    assert runs[0] == runs[1]
    other = evaluate(NARM(**TINY, precision=precision).fit(split, seed=4, progress=False), split.test, progress=False).metrics
    assert other != runs[0]  # the seed is used


# ------------------------------------------------------------------------ resuming a training
def test_an_interrupted_training_resumes_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, caplog):
    split = oracle_split()
    params = {**TINY, "epochs": 4, "patience": None}
    whole = NARM(**params).fit(split, seed=1, progress=False)
    path = tmp_path / "narm-training.pt"
    recall, calls = NARM._recall, []

    def interrupt_in_epoch_3(self, cases):  # epochs 1-2 are saved, epoch 3 is lost
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return recall(self, cases)

    monkeypatch.setattr(NARM, "_recall", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        NARM(**params).fit(split, seed=1, progress=False, checkpoint=path)
    monkeypatch.undo()
    resumed = NARM(**params).fit(split, seed=1, progress=False, checkpoint=path)
    assert resumed.resumed_["epochs"] == 2 and len(resumed.history_) == 4
    # epochs 3-4 see the same weights, Adam moments, shuffles and dropout masks as uninterrupted
    assert [h.loss for h in resumed.history_] == [h.loss for h in whole.history_]
    batch = next(split.test.prefix_batches(64))
    np.testing.assert_array_equal(as_numpy(resumed.score(batch)), as_numpy(whole.score(batch)))
    again = NARM(**params).fit(split, seed=1, progress=False, checkpoint=path)  # a finished training
    assert again.resumed_["epochs"] == 4 + again.selection_["epochs"]  # the selection run and the refit
    np.testing.assert_array_equal(as_numpy(again.score(batch)), as_numpy(whole.score(batch)))
    with caplog.at_level("WARNING", logger="sessionbench.checkpoints"):
        other = NARM(**params).fit(split, seed=2, progress=False, checkpoint=path)
    assert other.resumed_ is None and "seed: 1 there, 2 here" in caplog.text


def test_an_unreadable_training_checkpoint_is_replaced(tmp_path, caplog):
    path = tmp_path / "narm-training.pt"
    path.write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING", logger="sessionbench.checkpoints"):
        rec = NARM(**TINY).fit(oracle_split(), seed=0, progress=False, checkpoint=path)
    assert rec.resumed_ is None and "unreadable" in caplog.text and str(path) in caplog.text
    again = NARM(**TINY).fit(oracle_split(), seed=0, progress=False, checkpoint=path)
    assert again.resumed_["epochs"] == 2 + again.selection_["epochs"]  # the selection run and the refit


# ------------------------------------------------------------------------------- validation
def test_recent_validation_holds_out_the_latest_sessions_and_random_holds_out_prefixes():
    split = oracle_split(n_train=300)
    rng = np.random.default_rng(0)
    train, valid = NARM(validation="recent")._holdout(split.train, rng)
    assert len(train) + len(valid) == split.train.n_prefixes
    assert 0.08 <= len(valid) / split.train.n_prefixes <= 0.13
    last = split.train.to_lists()[-1]
    assert valid.targets[-1] == last[-1]  # the newest session is in the validation cases
    train, valid = NARM(validation="random")._holdout(split.train, rng)
    assert len(valid) == round(0.1 * split.train.n_prefixes) and len(train) + len(valid) == split.train.n_prefixes


# ------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def fitted() -> tuple[NARM, Split]:
    split = oracle_split()
    return NARM(**TINY).fit(split, seed=0, progress=False), split


def test_empty_prefix_is_refused_by_name(fitted):
    rec, _ = fitted
    empty = PrefixBatch(np.array([[3, PAD], [PAD, PAD]]), np.array([1, 0]), np.array([1, 1]))
    with pytest.raises(ValueError, match=r"NARM: prefix 1 .*empty"):
        rec.score(empty)


def test_items_unseen_in_training_get_finite_scores():
    seen = oracle_split()
    split = Split("unseen", seen.train, seen.test, seen.n_items + 5, np.arange(seen.n_items + 5))
    rec = NARM(**TINY).fit(split, seed=0, progress=False)
    scores = as_numpy(rec.score(prefixes([seen.n_items + 2, 0])))  # an unseen item in the prefix
    assert scores.shape == (1, split.n_items) and np.isfinite(scores).all()


def test_checkpoint_round_trip_and_vocabulary_mismatch(fitted, tmp_path):
    rec, split = fitted
    path = rec.save(tmp_path / "narm.pt")
    loaded = NARM.load(path, n_items=split.n_items)
    batch = next(split.test.prefix_batches(16))
    np.testing.assert_array_equal(as_numpy(loaded.score(batch)), as_numpy(rec.score(batch)))
    assert loaded.get_params() == rec.get_params()
    with pytest.raises(ValueError, match=rf"{split.n_items} items.*{split.n_items + 1} items"):
        NARM.load(path, n_items=split.n_items + 1)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_size", 0),
        ("embedding_dropout", 1.0),
        ("learning_rate", 0.0),
        ("patience", 0),
        ("truncate", "middle"),
        ("attention_norm", "sparsemax"),
        ("validation", "oldest"),
        ("validation_fraction", 1.0),
    ],
)
def test_bad_hyperparameters_name_the_parameter(param, value):
    with pytest.raises(ValueError, match=param):
        NARM(**{param: value})


def test_global_variant_has_no_attention():
    rec = NARMGlobal(**TINY).fit(oracle_split(), seed=0, progress=False)
    with pytest.raises(NotImplementedError, match="global"):
        rec.attention(prefixes([1, 2]))
    # the harness draws Figure 6 only for models that override the base class's hook
    assert NARMGlobal.attention_figure is Recommender.attention_figure
    assert NARM.attention_figure is not Recommender.attention_figure


# ----------------------------------------------------------------------------- figure 6
def test_attention_figure_writes_a_png_of_the_chosen_sessions(fitted, tmp_path):
    rec, split = fitted
    index = select_sessions(split.test, 4, min_length=3)
    assert len(index) == 4 and (split.test.lengths[index] - 1 >= 3).all()
    path = rec.attention_figure(split, tmp_path / "fig6.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- contract
class TestNARMContract(RecommenderContract):
    def make(self):
        return NARM(**LEARNS)


class TestNARMGlobalContract(RecommenderContract):
    def make(self):
        return NARMGlobal(**TINY)


class TestNARMLocalContract(RecommenderContract):
    def make(self):
        return NARMLocal(**TINY, attention_norm="softmax", truncate="first", validation="random")


class TestNARMFCContract(RecommenderContract):
    def make(self):
        return NARMFC(**LEARNS)


def test_oracle_successor_ranks_first_and_unseen_items_rank_low():
    seen = oracle_split()
    split = Split("unseen", seen.train, seen.test, seen.n_items + 5, np.arange(seen.n_items + 5))
    rec = NARM(embedding_size=16, hidden_size=32, learning_rate=0.01, epochs=10, patience=None, batch_size=64)
    scores = as_numpy(rec.fit(split, seed=0, progress=False).score(prefixes([5, 0], [0])))
    assert (scores.argmax(1) == 1).all()  # A (0) is always followed by B (1)
    # items never clicked in training are only ever pushed down by the softmax
    assert (scores[:, seen.n_items :].max(1) < np.median(scores[:, : seen.n_items], axis=1)).all()
