"""The moving average of the weights (training.ema_decay) and the module's epoch means."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from astroreg.config._recipe import TrainingConfig
from astroreg.training._average import WeightAverage
from astroreg.training._module import RegressionModule


def _loaders(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(256, 1, generator=g)

    def batches(xs, ys, bs):
        return DataLoader(TensorDataset(xs, ys), batch_size=bs,
                          collate_fn=lambda items: ({"x": torch.stack([i[0] for i in items])},
                                                    torch.stack([i[1] for i in items]), None))

    return batches(x[:192], y[:192], 16), batches(x[192:], y[192:], 64)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x["x"])


def _fit(tmp_path, callbacks, epochs=1):
    torch.manual_seed(0)
    module = RegressionModule(_Net(), n_targets=1, optimizer="sgd", lr=0.05)
    ckpt = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val_loss", mode="min")
    trainer = L.Trainer(max_epochs=epochs, callbacks=[ckpt, *callbacks], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
    train, val = _loaders()
    trainer.fit(module, train, val)
    return module, trainer, ckpt


def test_checkpoint_and_validation_see_the_average_training_keeps_its_own(tmp_path):
    avg = WeightAverage(0.9)
    module, trainer, ckpt = _fit(tmp_path, [avg])
    saved = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    averaged = avg.average.module.lin.weight
    own = module.backbone.lin.weight
    assert torch.equal(saved["backbone.lin.weight"], averaged)  # the checkpoint holds the average
    assert not torch.allclose(own, averaged)  # the optimiser's weights came back after validation
    # The logged validation loss is the average's.
    val = _loaders()[1]
    with torch.no_grad():
        losses = [(module.loss_fn(avg.average.module(x), y) * len(y), len(y)) for x, y, _ in val]
    expected = sum(l for l, _ in losses) / sum(n for _, n in losses)
    assert trainer.callback_metrics["val_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_average_lags_the_weights_by_its_decay(tmp_path):
    slow, fast = WeightAverage(0.99), WeightAverage(0.5)
    _fit(tmp_path / "slow", [slow])
    module, _, _ = _fit(tmp_path / "fast", [fast])
    start = torch.manual_seed(0) and _Net().lin.weight  # the initial weights of both runs
    own = module.backbone.lin.weight
    # After 12 steps the fast average is near the weights, the slow one still near the start.
    assert torch.dist(fast.average.module.lin.weight, own) < torch.dist(slow.average.module.lin.weight, own)
    assert torch.dist(slow.average.module.lin.weight, start) < torch.dist(own, start)


def test_epoch_means_are_batch_size_weighted(tmp_path):
    module, trainer, _ = _fit(tmp_path, [])
    val = _loaders()[1]
    with torch.no_grad():
        parts = [(module.loss_fn(module(x), y).item(), len(y)) for x, y, _ in val]
    expected = sum(l * n for l, n in parts) / sum(n for _, n in parts)
    assert trainer.callback_metrics["val_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert "train_loss" in trainer.callback_metrics


def test_decay_is_checked():
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainingConfig(ema_decay=1.5)
    assert TrainingConfig(ema_decay=0.998).ema_decay == 0.998
