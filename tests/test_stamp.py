"""STAMP: the network's equations on hand-set weights, the input clipping, the per-dataset
settings, and the shipped contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionbench.plan import plan
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy, oracle_split
from stamp import STAMP, STAMPModule

TINY = {"embedding_size": 12, "epochs": 2, "batch_size": 64, "learning_rate": 0.01}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_query_follows_the_equations():
    torch.manual_seed(0)
    module = STAMPModule(6, embedding_size=4, max_norm=None, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
        module.embedding.weight[0].zero_()
    items, lengths = torch.tensor([[2, 5, 3]]), torch.tensor([3])
    x = module.embedding.weight[[2, 5, 3]].detach()
    m_s, m_t = x.mean(0), x[-1]
    alpha = torch.stack([module.w0(torch.sigmoid(module.w1(xi) + module.w2(m_t) + module.w3(m_s))) for xi in x])
    m_a = (alpha * x).sum(0) + m_s  # the code's + m_s
    expected = torch.tanh(module.ws(m_a)) * torch.tanh(module.wt(m_t))
    torch.testing.assert_close(module.query(items, lengths)[0], expected)
    torch.testing.assert_close(module(items, lengths)[0], expected @ module.embedding.weight[1:].T)


def test_input_embeddings_are_clipped_and_the_output_table_is_not():
    module = STAMPModule(3, embedding_size=2, max_norm=1.0)
    with torch.no_grad():
        module.embedding.weight[1] = torch.tensor([3.0, 4.0])  # norm 5
        module.embedding.weight[2] = torch.tensor([0.3, 0.4])  # norm 0.5
    clipped = module._inputs(torch.tensor([[1, 2, 0]]))[0]
    torch.testing.assert_close(clipped, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
    torch.testing.assert_close(module.item_embeddings[0], torch.tensor([3.0, 4.0]))


def test_padding_does_not_change_a_prefixs_scores():
    module = STAMPModule(8, embedding_size=6, generator=torch.Generator().manual_seed(0))
    padded = module(torch.tensor([[4, 2, 0, 0]]), torch.tensor([2]))
    alone = module(torch.tensor([[4, 2]]), torch.tensor([2]))
    torch.testing.assert_close(padded, alone)


def test_each_dataset_takes_the_settings_of_the_authors_logged_run_on_it():
    (dig,) = plan(["diginetica"], ["stamp"], [0])
    (yoo,) = plan(["yoochoose-1-64"], ["stamp"], [0])
    (quarter,) = plan(["yoochoose-1-4"], ["stamp"], [0])
    (tmall,) = plan(["tmall"], ["stamp"], [0])
    assert dig.params == {"max_norm": 1.5, "max_grad_norm": 110.0, "learning_rate": 0.005}
    assert quarter.params == {"max_grad_norm": 10.0, "learning_rate": 0.005}
    assert yoo.params == tmall.params == {}  # the constructor's: the shipped config, YOOCHOOSE 1/64's log
    rec = STAMP()
    assert (rec.learning_rate, rec.max_grad_norm, rec.max_norm) == (0.003, 150.0, 1.0)


def test_adam_gets_the_summed_losss_gradient_each_parameters_clipped_on_its_own():
    # the code differentiates the batch's summed loss and clips with tf.clip_by_norm
    rec = STAMP(max_grad_norm=5.0)
    rec.module_ = STAMPModule(3, embedding_size=2, generator=torch.Generator().manual_seed(0))
    params = list(rec.module_.parameters())
    mean_grads = [torch.full_like(p, 0.5) for p in params]
    mean_grads[0] = torch.tensor([[0.0, 0.0], [0.3, 0.4], [0.0, 0.0], [0.0, 0.0]])  # norm 0.5
    for max_norm, want_first in ((2.5, [1.5, 2.0]), (0.0, [3.0, 4.0]), (100.0, [3.0, 4.0])):
        rec.max_grad_norm = max_norm
        for p, g in zip(params, mean_grads):
            p.grad = g.clone()
        rec._prepare_gradients(10)  # a batch of 10: the sum's gradient is 10 times the mean's
        torch.testing.assert_close(params[0].grad[1], torch.tensor(want_first))
        for p, g in zip(params[1:], mean_grads[1:]):
            total = 10 * float(g.norm())
            want = 10 * g * (max_norm / total if max_norm and total > max_norm else 1.0)
            torch.testing.assert_close(p.grad, want)


def test_each_parameters_gradient_is_clipped_on_its_own(monkeypatch):
    norms = []
    rec = STAMP(**{**TINY, "max_grad_norm": 1e-3, "epochs": 1, "refit": False})
    step = torch.optim.Adam.step

    def record(self, *args, **kwargs):
        norms.extend(float(p.grad.norm()) for group in self.param_groups for p in group["params"] if p.grad is not None)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", record)
    rec.fit(oracle_split(n_train=60), seed=0, progress=False)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-4)


def test_fit_learns_the_oracle():
    rec = STAMP(**TINY).fit(oracle_split(), seed=0, progress=False)
    after_a = as_numpy(rec.score(PrefixBatch.from_lists([[5, 0], [7, 3, 0]])))
    assert (after_a.argmax(1) == 1).all()  # B follows A
    assert rec.selection_["epochs"] in (1, 2) and np.isfinite(rec.history_[-1].loss)


class TestSTAMPContract(RecommenderContract):
    def make(self):
        return STAMP(**TINY)
