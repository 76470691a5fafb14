"""The epoch loop shared by the torch models: resuming a training from its checkpoint."""

import pytest
import torch

from sessionbench.training import Checkpoint, generators, read_checkpoint_file, train_epochs, write_checkpoint_file

VALIDATION = [0.1, 0.3, 0.2, 0.5, 0.6]  # with patience 1: stops after epoch 3, best epoch 2


class Counter(torch.nn.Module):
    """Three weights, and the number of epochs run as a buffer (the validation reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3))
        self.register_buffer("epochs", torch.zeros((), dtype=torch.long))


def train(checkpoint=None, interrupt_after=None):
    """Five epochs at most of a training that draws from a numpy and a torch generator and
    steps Adam; interrupted after epoch ``interrupt_after`` when given."""
    module, (rng, gen) = Counter(), generators(0)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1)

    def run_epoch(epoch):
        optimizer.zero_grad()
        loss = ((module.weight - torch.randn(3, generator=gen)) ** 2).sum() + float(rng.random())
        loss.backward()
        optimizer.step()
        module.epochs += 1
        return loss.item()

    def interrupt(entry):
        if entry.epoch + 1 == interrupt_after:
            raise KeyboardInterrupt

    saved = None
    if checkpoint is not None:
        saved = Checkpoint(checkpoint, {"test": 1}, {"optimizer": optimizer, "rng": rng, "gen": gen})
    history = train_epochs(
        run_epoch, epochs=5, module=module, validate=lambda: VALIDATION[int(module.epochs) - 1], patience=1,
        progress=False, on_epoch=interrupt, checkpoint=saved,
    )
    return [(h.epoch, h.loss, h.validation) for h in history], module, saved


@pytest.mark.parametrize("interrupt_after", [1, 2, 3], ids=["epoch1", "epoch2", "after-the-stop"])
def test_a_training_interrupted_after_any_epoch_resumes_to_the_same_end(tmp_path, interrupt_after):
    whole, module, _ = train()
    assert [epoch for epoch, *_ in whole] == [0, 1, 2]  # early stopping after epoch 3
    path = tmp_path / "training.pt"
    with pytest.raises(KeyboardInterrupt):
        train(path, interrupt_after)
    history, resumed, saved = train(path)
    assert saved.resumed_epochs == interrupt_after and saved.resumed_seconds > 0
    assert history == whole
    assert torch.equal(resumed.weight, module.weight) and int(resumed.epochs) == 2  # epoch 2's, the best
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.pt"]  # no temporary file left


def test_a_checkpoint_of_another_shape_is_replaced_with_a_warning(tmp_path, caplog):
    path = tmp_path / "training.pt"
    write_checkpoint_file(path, {"identity": {"test": 1}, "objects": {}, "loop": {}})
    with caplog.at_level("WARNING", logger="sessionbench.checkpoints"):
        _, _, saved = train(path)
    assert saved.resumed_epochs == 0 and "lacks" in caplog.text and "optimizer" in caplog.text
    assert train(path)[2].resumed_epochs == 3  # replaced by this training's


def test_a_matching_checkpoint_that_cannot_be_restored_says_so(tmp_path):
    path = tmp_path / "training.pt"
    train(path)
    saved = read_checkpoint_file(path)
    saved["objects"]["__module__"]["weight"] = torch.zeros(4)  # another shape
    write_checkpoint_file(path, saved)
    with pytest.raises(ValueError, match=r"(?s)training\.pt matches this training but cannot be restored.*--force"):
        train(path)


def test_an_object_without_state_is_refused_by_name(tmp_path):
    saved = Checkpoint(tmp_path / "t.pt", {}, {"sampler": object()})
    with pytest.raises(TypeError, match="cannot save a object"):
        train_epochs(lambda epoch: 0.0, epochs=1, progress=False, checkpoint=saved)
