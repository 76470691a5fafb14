"""The precision option: what "auto" resolves to, the models' bf16 training, fp32 evaluation,
the result's record, and the weights generator that lets the GRU4Rec models train on a GPU."""

import json

import pytest
import torch

import baselines.gru4rec.recommender as gru4rec_module
import baselines.gru4rec_improved as improved_module
from baselines.gru4rec import GRU4Rec, GRU4RecTuned
from baselines.gru4rec_improved import ImprovedGRU4Rec
from narm import NARM, NARMFC
from sessionbench import precision
from sessionbench.evaluation import evaluate
from sessionbench.harness import Job, run_job
from sessionbench.precision import native_bf16, resolve_precision
from sessionbench.testing import oracle_split
from sessionbench.training import generators, weights_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_auto_picks_fp32_on_a_cpu_without_bf16_and_bf16_on_one_with_it(monkeypatch):
    for avx512_bf16, amx, want in ((False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert native_bf16("cpu") is (want == "bf16")
        assert resolve_precision("auto", "cpu") == want
        assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"


def test_auto_on_a_gpu_asks_whether_its_tensor_cores_take_bf16(monkeypatch):
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: asked.append(including_emulation) or False)
    assert resolve_precision("auto", "cuda") == "fp32"
    assert asked == [False]  # emulated bf16 (older GPUs) is slower than fp32, so it does not count


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, got 'half'"):
        resolve_precision("half", "cpu")
    assert precision.PRECISIONS == ("auto", "fp32", "bf16")


MODELS = {
    "narm": lambda p: NARM(embedding_size=8, hidden_size=12, epochs=2, batch_size=64, precision=p),
    "narm-fc": lambda p: NARMFC(embedding_size=8, hidden_size=12, epochs=2, batch_size=64, precision=p),
    "gru4rec-improved": lambda p: ImprovedGRU4Rec(embedding_size=16, hidden_size=16, batch_size=64, epochs=2, precision=p),
    "gru4rec-tuned": lambda p: GRU4RecTuned(hidden_size=16, batch_size=16, n_negatives=16, epochs=2, precision=p),
    "gru4rec (one-hot)": lambda p: GRU4Rec(hidden_size=16, batch_size=16, epochs=2, precision=p),
}


def _weights(rec) -> torch.Tensor:
    module = getattr(rec, "module_", None) or rec.net_
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("name", MODELS)
def test_training_in_bf16_scores_in_fp32_and_a_seed_repeats_exactly_in_each_precision(name):
    split = oracle_split()
    fitted = {}
    for p in ("fp32", "bf16"):
        runs = [MODELS[name](p).fit(split, seed=1, progress=False) for _ in "ab"]
        assert [r.precision_ for r in runs] == [p, p]
        metrics = [evaluate(r, split.test, progress=False).metrics for r in runs]
        assert metrics[0] == metrics[1]  # deterministic on the CPU in either precision
        fitted[p] = runs[0]
    # the option does something: bf16 rounding moves the trained weights
    assert not torch.equal(_weights(fitted["fp32"]), _weights(fitted["bf16"]))
    sessions, lengths = split.test.prefix_cases()
    batch = split.test.gather_prefixes(sessions[:16], lengths[:16])
    scores = fitted["bf16"].score(batch)
    assert torch.as_tensor(scores).dtype == torch.float32  # evaluation in fp32 whatever the training


@pytest.mark.parametrize("name", MODELS)
def test_auto_follows_the_capability_check(name, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert MODELS[name]("auto").fit(oracle_split(), seed=0, progress=False).precision_ == "fp32"
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert MODELS[name]("auto").fit(oracle_split(), seed=0, progress=False).precision_ == "bf16"


def test_a_result_records_its_precision_and_auto_is_resolved_in_its_identity(tmp_path, monkeypatch):
    job = Job("synthetic", "narm", params={"embedding_size": 8, "hidden_size": 8, "epochs": 1, "batch_size": 256})
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    first = run_job(job, results_dir=tmp_path, progress=False)
    assert first.status == "ran", first.error
    result = json.loads(first.path.read_text())
    assert result["precision"] == "fp32" and result["identity"]["precision"] == "fp32"
    assert run_job(job, results_dir=tmp_path, progress=False).status == "reused"
    # the same command where bf16 is native is another training: not reused
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    second = run_job(job, results_dir=tmp_path, progress=False)
    assert second.status == "ran" and json.loads(second.path.read_text())["precision"] == "bf16"


class _CudaGenerator:
    """What ``generators(seed, "cuda")`` hands a model, as far as its initial weights see it."""

    device = torch.device("cuda")

    def initial_seed(self) -> int:
        return 1234


def test_weights_are_drawn_on_the_cpu_whatever_the_device_of_the_dropout_generator(monkeypatch):
    cpu = generators(0, "cpu")[1]
    assert weights_generator(cpu) is cpu  # CPU trainings keep their weights
    made = weights_generator(_CudaGenerator())
    assert made.device.type == "cpu" and made.initial_seed() == 1234
    # the GRU4Rec models draw their weights through it from the generator that draws their
    # dropout masks (torch refuses a CUDA generator for weights made on the CPU)
    models = {gru4rec_module: GRU4Rec(hidden_size=8, batch_size=4, epochs=1),
              improved_module: ImprovedGRU4Rec(hidden_size=8, embedding_size=8, epochs=1)}
    for module, rec in models.items():
        seen = []
        monkeypatch.setattr(module, "weights_generator", lambda gen, seen=seen: seen.append(gen) or weights_generator(gen))
        rec.fit(oracle_split(), seed=0, progress=False)
        assert len(seen) == 1 and seen[0].device.type == "cpu"
