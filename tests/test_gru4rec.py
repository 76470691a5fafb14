"""GRU4Rec: session-parallel batching, the losses, the optimiser, evaluation from a zero state,
and each flaw of third-party implementations (Hidasi & Czapp, RecSys 2023) shown absent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import baselines.gru4rec as g4r
import baselines.gru4rec.network as g4r_network
import baselines.gru4rec.recommender as g4r_recommender
from baselines.gru4rec import (
    LOSSES,
    UNSEEN_SCORE,
    AdagradMomentum,
    GRU4Rec,
    GRU4RecTuned,
    session_parallel_schedule,
)
from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, abc_split

pytestmark = pytest.mark.usefixtures("one_thread")


#: A small version of the tuned setting (BPR-max, constrained embedding, shared negatives).
SMALL_TUNED = dict(hidden_size=32, batch_size=16, n_negatives=32, epochs=2)


def small_tuned(**overrides) -> GRU4RecTuned:
    return GRU4RecTuned(**{**SMALL_TUNED, **overrides})


def prefix_batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


# ------------------------------------------------------------------ session-parallel batches


def test_schedule_on_a_hand_made_batch():
    # sessions (clicks at flat positions): s0 0-2, s1 3-4, s2 5-8, s3 9-10; two slots.
    # Step 0: slots take s0, s1. s1 ends after 1 step: at step 1 its slot takes s2 (reset);
    # s0 ends after 2 steps: at step 2 its slot takes s3 (reset). s3 ends at step 3, no
    # session is left, so that slot retires and the batch is one wide. Slots are numbered
    # busiest first: slot 0 is the one that ran s1 then s2.
    schedule = session_parallel_schedule(np.array([3, 2, 4, 2]), batch_size=2)
    np.testing.assert_array_equal(schedule.position, [[3, 0], [5, 1], [6, 9], [7, -1]])
    np.testing.assert_array_equal(schedule.reset, [[True, True], [True, False], [False, True], [False, False]])
    np.testing.assert_array_equal(schedule.width, [2, 2, 2, 1])


@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_schedule_feeds_every_click_once_and_resets_exactly_at_session_starts(batch_size):
    lengths = np.random.default_rng(batch_size).integers(2, 9, size=40)
    sessions = Sessions.from_lists([list(range(n)) for n in lengths])
    schedule = session_parallel_schedule(lengths, batch_size)
    pos = schedule.position
    fed = np.sort(pos[pos >= 0])
    last_clicks = sessions.offsets[1:] - 1
    np.testing.assert_array_equal(fed, np.setdiff1d(np.arange(sessions.n_clicks), last_clicks))
    # a slot's positions run through a session, and a reset marks exactly each session's first click
    starts = set(sessions.offsets[:-1].tolist())
    for t in range(len(schedule)):
        w = schedule.width[t]
        assert (pos[t, :w] >= 0).all() and (pos[t, w:] == -1).all()
        for k in range(w):
            assert schedule.reset[t, k] == (pos[t, k] in starts)
            if t > 0 and not schedule.reset[t, k]:
                assert pos[t, k] == pos[t - 1, k] + 1


def test_training_resets_exactly_the_hidden_states_of_new_sessions(monkeypatch):
    seen = []
    original = GRU4Rec._train_step

    def spy(self, hidden, inputs, targets, negatives):
        out = original(self, hidden, inputs, targets, negatives)
        seen.append((hidden.clone(), out[0].clone()))
        return out

    monkeypatch.setattr(GRU4Rec, "_train_step", spy)
    split = abc_split()
    rec = GRU4Rec(hidden_size=8, batch_size=4, epochs=1, dropout_hidden=0.0).fit(split, seed=0, progress=False)
    schedule = session_parallel_schedule(split.train.lengths, rec.batch_size)
    assert len(seen) == int((schedule.width >= 2).sum())  # a lone row has no negative: stop, as the reference
    for t, (entering, _) in enumerate(seen):
        reset = schedule.reset[t, : len(entering)]
        assert (entering[reset] == 0).all()
        if t > 0:
            carried = seen[t - 1][1][: len(entering)][~reset]
            torch.testing.assert_close(entering[~reset], carried)
            assert (carried.abs().sum(1) > 0).all()


# -------------------------------------------------------------------------------- losses

SCORES = torch.tensor([[0.5, -1.0, 2.0, 0.1, -0.3], [1.5, 0.2, -0.4, 0.9, 0.0], [-0.2, 0.7, 0.3, -1.1, 1.2]])


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _expected(loss: str, r: list[float], i: int, bpreg: float) -> float:
    """The paper's formula for row i written out over its negatives j != i."""
    neg = [r[j] for j in range(len(r)) if j != i]
    t = r[i]
    soft = [math.exp(x) / sum(math.exp(y) for y in neg) for x in neg]
    if loss == "top1":
        return sum(_sig(x - t) + _sig(x * x) for x in neg) / len(neg)
    if loss == "bpr":
        return -sum(math.log(_sig(t - x)) for x in neg) / len(neg)
    if loss == "top1-max":
        return sum(s * (_sig(x - t) + _sig(x * x)) for s, x in zip(soft, neg))
    if loss == "bpr-max":
        ranking = sum(s * _sig(t - x) for s, x in zip(soft, neg))
        return -math.log(ranking) + bpreg * sum(s * x * x for s, x in zip(soft, neg))
    return -math.log(math.exp(t) / sum(math.exp(x) for x in r))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_each_loss_equals_its_formula(loss):
    # 3 sessions' targets on the diagonal, 2 shared extra negatives in columns 3-4
    got = LOSSES[loss](SCORES.double(), 0.9)
    want = [_expected(loss, SCORES[i].tolist(), i, 0.9) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


@pytest.mark.parametrize("activation", ["elu", "tanh", "linear"])
@pytest.mark.parametrize("shape", [(5, 12), (3, 3), (64, 300)])
def test_bpr_max_training_loss_and_its_hand_made_gradient_equal_autograds(activation, shape):
    # spread-out scores (ELU below and above 0, saturating tanh) and unequal weights per row
    gen = torch.Generator().manual_seed(sum(shape))
    scores = (3 * torch.randn(*shape, generator=gen, dtype=torch.float64)).requires_grad_()
    weights = torch.rand(shape[0], generator=gen, dtype=torch.float64)
    activated = {"elu": torch.nn.functional.elu(scores, 0.7), "tanh": torch.tanh(scores), "linear": scores}
    want = LOSSES["bpr-max"](activated[activation], 0.9)
    (want_grad,) = torch.autograd.grad((want * weights).sum(), scores)
    fused = scores.detach().clone().requires_grad_()
    got = g4r_recommender.training_loss("bpr-max", fused, 0.9, activation, 0.7)
    (got_grad,) = torch.autograd.grad((got * weights).sum(), fused)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


def test_a_bf16_product_and_its_gradients_equal_fp32s_to_bf16_rounding():
    # x @ W.T + b as the step computes it with precision="bf16", against fp32 on random data:
    # inputs rounded to 8 bits of mantissa (relative 2^-9), sums of 512 terms accumulated in fp32
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*s, generator=gen).requires_grad_() for s in ((64, 512), (300, 512), (300,)))
    upstream = torch.randn(64, 300, generator=gen)
    out = {}
    for bf16 in (False, True):
        y = g4r_network.linear(x, weight, bias, bf16)
        assert y.dtype == torch.float32
        out[bf16] = (y.detach(), *torch.autograd.grad((y * upstream).sum(), (x, weight, bias)))
    for want, got in zip(out[False], out[True]):
        assert got.dtype == torch.float32
        # error relative to the size of the result: a few 2^-9 (a product of two rounded inputs,
        # then the output rounded), far below it would be a sign that nothing was rounded
        rel = float((got - want).norm() / want.norm())
        assert rel < 2**-6
    assert float((out[True][0] - out[False][0]).norm() / out[False][0].norm()) > 2**-12


def test_adagrad_with_momentum_updates_only_the_touched_rows():
    table = torch.nn.Parameter(torch.ones(5, 2))
    opt = AdagradMomentum([table], learning_rate=0.1, momentum=0.5)
    rows, grad = torch.tensor([1, 3]), torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    opt.step_rows(table, rows, grad)
    opt.step_rows(table, rows, grad)
    acc1, acc2 = grad**2, 2 * grad**2
    v1 = -0.1 * grad / (acc1 + 1e-6).sqrt()
    v2 = 0.5 * v1 - 0.1 * grad / (acc2 + 1e-6).sqrt()
    torch.testing.assert_close(table.data[rows], 1 + v1 + v2)
    assert (table.data[[0, 2, 4]] == 1).all()
    # dense step: the same rule on the whole tensor
    dense = torch.nn.Parameter(torch.ones(5, 2))
    opt = AdagradMomentum([dense], learning_rate=0.1, momentum=0.5)
    full = torch.zeros(5, 2).index_copy_(0, rows, grad)
    opt.step_dense([dense], [full])
    opt.step_dense([dense], [full])
    torch.testing.assert_close(dense.data, table.data)


# ----------------------------------------------------------------- sampling and embedding


def test_extra_negatives_follow_support_to_the_alpha():
    counts = np.array([1, 4, 9, 16])
    rng = np.random.default_rng(0)
    for alpha, probs in [(0.5, np.array([1, 2, 3, 4]) / 10), (0.0, np.full(4, 0.25)), (1.0, counts / 30)]:
        sampler = g4r._NegativeSampler(counts, alpha, 1000, rng, torch.device("cpu"))
        draws = torch.cat([sampler() for _ in range(200)]).numpy()
        np.testing.assert_allclose(np.bincount(draws, minlength=4) / len(draws), probs, atol=0.01)


def test_extra_negatives_are_drawn_once_per_step_and_shared_by_every_row(monkeypatch):
    shapes, calls = [], []
    loss = g4r_recommender.training_loss
    spy = lambda name, scores, *args: shapes.append(tuple(scores.shape)) or loss(name, scores, *args)  # noqa: E731
    monkeypatch.setattr(g4r_recommender, "training_loss", spy)
    original = g4r._NegativeSampler.__call__
    monkeypatch.setattr(g4r._NegativeSampler, "__call__", lambda self: calls.append(1) or original(self))
    small_tuned(epochs=1).fit(abc_split(), seed=0, progress=False)
    # each row is scored against all targets of the batch plus the same 32 sampled items
    assert len(calls) == len(shapes) > 0
    assert all(cols == rows + 32 for rows, cols in shapes)
    assert shapes[0] == (16, 48)


def test_constrained_embedding_uses_the_output_weights_as_input():
    rec = small_tuned(epochs=1).fit(abc_split(), seed=0, progress=False)
    net = rec.net_
    assert net.input_table() is net.item_weight
    assert not hasattr(net, "embedding") and not hasattr(net, "input_weight")
    h = torch.zeros(1, 32)
    before = net.step(torch.tensor([5]), h)
    with torch.no_grad():
        net.item_weight[5] += 1.0
    assert not torch.allclose(net.step(torch.tensor([5]), h), before)


@pytest.mark.parametrize("mode", [dict(embedding_size=0), dict(embedding_size=12)])
def test_one_hot_and_separate_embedding_inputs_learn(mode):
    rec = GRU4Rec(hidden_size=16, batch_size=8, epochs=3, learning_rate=0.1, **mode)
    rec.fit(abc_split(), seed=0, progress=False)
    assert hasattr(rec.net_, "input_weight" if mode["embedding_size"] == 0 else "embedding")
    assert evaluate(rec, abc_split().test, progress=False).metrics["recall@20"] == 1.0


# -------------------------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def fitted() -> tuple[GRU4Rec, Split]:
    split = load_dataset("synthetic", size="small")
    train = split.train.select(np.arange(1500))
    # test sessions whose every click is a training item, so that no click is skipped
    seen = np.isin(split.test.items, train.items)
    whole = np.flatnonzero(np.minimum.reduceat(seen, split.test.offsets[:-1]))[:60]
    small = Split(split.name, train, split.test.select(whole), split.n_items, split.item_ids)
    return small_tuned(epochs=1).fit(small, seed=0, progress=False), small


def test_prefix_scores_equal_session_parallel_click_by_click_evaluation(fitted):
    """Score every prefix from a zero state == run the test sessions session-parallel, one click
    at a time, resetting each slot's state at a new session (the reference's evaluation)."""
    rec, split = fitted
    test = split.test
    schedule = session_parallel_schedule(test.lengths, batch_size=7)
    compact = rec.item_map_[torch.from_numpy(test.items.astype(np.int64))]
    hidden = torch.zeros(7, rec.hidden_size)
    stepped = {}
    with torch.no_grad():
        for t in range(len(schedule)):
            w = schedule.width[t]
            pos = torch.from_numpy(schedule.position[t, :w])
            hidden = g4r._reset_hidden(hidden[:w], torch.from_numpy(schedule.reset[t, :w]))
            hidden = rec.net_.step(compact[pos], hidden)
            for k, p in enumerate(pos.tolist()):
                stepped[p] = rec.net_.scores(hidden[k : k + 1])[0]
    # prefix_cases order: session by session, shortest prefix first = input click positions
    session, length = test.prefix_cases()
    positions = test.offsets[session] + length - 1
    done = 0
    for batch in test.prefix_batches(batch_size=64):
        scores = rec.score(batch)[:, rec.known_]
        want = torch.stack([stepped[int(p)] for p in positions[done : done + len(batch)]])
        torch.testing.assert_close(scores, want, atol=1e-5, rtol=1e-5)
        done += len(batch)


def test_score_starts_every_prefix_from_a_zero_state(fitted):
    rec, _ = fitted
    alone = rec.score(prefix_batch([7]))
    after_others = rec.score(prefix_batch([3, 4, 5], [7], [9, 9]))
    torch.testing.assert_close(after_others[1], alone[0])
    expected = rec.net_.scores(rec.net_.step(rec.item_map_[torch.tensor([7])], torch.zeros(1, rec.hidden_size)))
    torch.testing.assert_close(alone[:, rec.known_], expected)


def test_items_without_training_clicks_score_lowest_and_are_skipped_as_input():
    split = abc_split()
    split.n_items, split.item_ids = 65, np.arange(65)  # items 60-64: never clicked in training
    rec = small_tuned(epochs=1).fit(split, seed=0, progress=False)
    scores = rec.score(prefix_batch([0, 62], [0], [63]))
    assert (scores[:, 60:] == UNSEEN_SCORE).all() and (scores[:, :60] > UNSEEN_SCORE).all()
    torch.testing.assert_close(scores[0], scores[1])  # the unseen click changed nothing
    torch.testing.assert_close(scores[2, :60], rec.net_.scores(torch.zeros(1, 32))[0])


# ---------------------------------------------------------------------------------- learning


@pytest.mark.parametrize(
    "make",
    [lambda: GRU4Rec(hidden_size=16, batch_size=8, epochs=4, learning_rate=0.1), small_tuned],
    ids=["iclr-2016", "tuned"],
)
def test_learns_a_deterministic_sequence(make):
    split = abc_split()
    result = evaluate(make().fit(split, seed=0, progress=False), split.test, progress=False)
    assert result.metrics["recall@20"] == 1.0


def test_beats_itemknn_on_the_small_synthetic_data():
    from baselines.itemknn import ItemKNN

    split = load_dataset("synthetic", size="small")
    knn = evaluate(ItemKNN().fit(split, seed=0, progress=False), split.test, n_items=split.n_items, progress=False)
    # the tuned setting scaled to the small data (64 units, 128 negatives, 2 epochs)
    rec = small_tuned(
        hidden_size=64, batch_size=32, n_negatives=128, dropout_embedding=0.3, dropout_hidden=0.1, bpreg=0.5
    )
    ours = evaluate(rec.fit(split, seed=0, progress=False), split.test, n_items=split.n_items, progress=False)
    assert ours.metrics["recall@20"] > knn.metrics["recall@20"]
    assert ours.metrics["mrr@20"] > knn.metrics["mrr@20"]


def test_fixed_seed_gives_identical_metrics_twice():
    split = abc_split(seed=3)
    split.test = split.train.select(np.arange(0, 600, 7))
    fits = [small_tuned(epochs=1).fit(split, seed=5, progress=False) for _ in range(2)]
    runs = [evaluate(rec, split.test, progress=False) for rec in fits]
    assert runs[0].metrics == runs[1].metrics
    np.testing.assert_array_equal(runs[0].greater, runs[1].greater)



@pytest.fixture
def two_threads():
    """Torch on two threads for one test (the module otherwise runs on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize(
    "inputs", [{}, {"constrained_embedding": False, "embedding_size": 256}], ids=["constrained", "embedding"]
)
def test_issue_20_gru4rec_tuned_is_deterministic_on_two_threads(inputs):
    # 128 slots over 20 items: every step feeds some item in many slots, and each gathered
    # input table (128 x 256 floats) is large enough for torch to split its backward over
    # threads; indexing's backward then summed the repeated rows with racing atomic adds
    split = abc_split(n_items=20)
    batch = prefix_batch([0], [0, 1], [5, 6, 7])
    fits = [small_tuned(hidden_size=256, batch_size=128, n_negatives=64, epochs=1, **inputs) for _ in range(3)]
    fits = [rec.fit(split, seed=0, progress=False) for rec in fits]
    losses = [[epoch.loss for epoch in rec.history_] for rec in fits]
    assert losses[1] == losses[0] and losses[2] == losses[0]
    for rec in fits[1:]:
        np.testing.assert_array_equal(rec.score(batch).numpy(), fits[0].score(batch).numpy())


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1])
def test_issue_20_take_equals_indexing_and_sums_repeated_rows_the_same_way_every_time(device, dim):
    # on the CPU one small call rarely shows the race (the fits above do); on CUDA the loop
    # checks that indexing's sorted backward sums the same way every time
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 3, (128,), generator=gen).to(device)  # 3 rows, each taken ~43 times
    scale = torch.logspace(-8, 8, 128)  # per taken row: its order of summation shows in the last bits
    weights = torch.randn(128, 512, generator=gen) * scale[:, None]
    weights = (weights if dim == 0 else weights.T.contiguous()).to(device)
    x = torch.randn((3, 512) if dim == 0 else (512, 3), generator=gen).to(device)

    def gradient():
        leaf = x.clone().requires_grad_()
        taken = g4r._take(leaf, dim, index)
        assert torch.equal(taken, leaf[index] if dim == 0 else leaf[:, index])
        return torch.autograd.grad((taken * weights).sum(), leaf)[0]

    expected = torch.zeros(x.shape, dtype=torch.float64, device=device).index_add_(dim, index, weights.double())
    first = gradient()
    torch.testing.assert_close(first.double(), expected, rtol=1e-4, atol=1e-2)
    for _ in range(20):
        assert torch.equal(gradient(), first)


# ------------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    "bad",
    [
        dict(loss="hinge"),
        dict(final_activation="relu"),
        dict(constrained_embedding=True, embedding_size=8),
        dict(batch_size=1),
        dict(dropout_hidden=1.0),
        dict(logq=0.5),
        dict(momentum=1.0),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(bad):
    with pytest.raises(ValueError, match=next(iter(bad)) if "constrained" not in bad else "embedding_size"):
        GRU4Rec(**bad)


def test_tuned_defaults_are_the_published_diginetica_setting():
    p = GRU4RecTuned().get_params()
    assert p == {
        "loss": "bpr-max", "final_activation": "elu", "hidden_size": 512, "embedding_size": 0,
        "constrained_embedding": True, "batch_size": 128, "dropout_embedding": 0.5, "dropout_hidden": 0.3,
        "learning_rate": 0.05, "momentum": 0.15, "n_negatives": 2048, "sample_alpha": 0.3, "bpreg": 0.9,
        "elu_param": 1.0, "logq": 0.0, "epochs": 10, "precision": "fp32",
    }  # fmt: skip
    assert GRU4Rec().loss == "top1" and GRU4Rec().final_activation == "tanh" and GRU4Rec().hidden_size == 100


def test_cross_entropy_with_logq_trains():
    rec = GRU4Rec(
        loss="cross-entropy", final_activation="linear", logq=1.0, n_negatives=16, hidden_size=16, batch_size=8,
        epochs=2,
    )  # fmt: skip
    split = abc_split()
    assert evaluate(rec.fit(split, seed=0, progress=False), split.test, progress=False).metrics["recall@20"] == 1.0


class TestGRU4RecContract(RecommenderContract):
    def make(self):
        return GRU4Rec(hidden_size=16, batch_size=8, epochs=2)


class TestGRU4RecTunedContract(RecommenderContract):
    def make(self):
        return small_tuned()
