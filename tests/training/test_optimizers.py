"""SGD (with Keras-style momentum and Nesterov) and the MAE losses of the paper-004 search space."""

import numpy as np
import pytest
import torch
from torch import nn

from astroreg.config._recipe import (
    LOSS_NAMES,
    OPTIMIZER_NAMES,
    OptimizerConfig,
    TrainingConfig,
)
from astroreg.training import RegressionLoss
from astroreg.training._module import RegressionModule


def _module(**kw):
    torch.manual_seed(0)
    return RegressionModule(nn.Linear(3, 1), n_targets=1, **kw)


def test_sgd_is_an_optimizer_name_and_gets_momentum_and_nesterov():
    assert "sgd" in OPTIMIZER_NAMES
    opt = _module(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True).configure_optimizers()
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.05, 0.9, True)
    plain = _module(optimizer="sgd").configure_optimizers().param_groups[0]
    assert (plain["momentum"], plain["nesterov"]) == (0.0, False)
    # Momentum belongs to SGD: another optimiser ignores it instead of failing.
    assert isinstance(_module(optimizer="adamax", momentum=0.9).configure_optimizers(), torch.optim.Adamax)


def test_sgd_with_momentum_fits_a_line():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(256, 3)), dtype=torch.float32)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    module = _module(optimizer="sgd", lr=0.05, momentum=0.9)
    opt = module.configure_optimizers()
    first = module.loss_fn(module(x), y).item()
    for _ in range(100):
        opt.zero_grad()
        module.loss_fn(module(x), y).backward()
        opt.step()
    assert module.loss_fn(module(x), y).item() < 1e-3 * first


def test_nesterov_without_momentum_is_refused():
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        OptimizerConfig(name="sgd", nesterov=True)
    with pytest.raises(ValueError, match="needs momentum > 0"):
        _module(optimizer="sgd", nesterov=True)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        _module(optimizer="rmsprop")
    assert OptimizerConfig(name="sgd", momentum=0.9, nesterov=True).momentum == 0.9


def test_mae_losses_by_hand_with_sample_weights_and_missing_targets():
    assert {"mae", "weighted_mae"} <= set(LOSS_NAMES)
    assert TrainingConfig(loss="mae").loss == "mae"
    pred = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 9.0]])
    true = torch.tensor([[0.0, 0.5], [1.0, 0.0], [float("nan"), 1.0]])
    # |e| per target: t0 = 1, 2 (NaN row left out); t1 = 0.5, 2, 8
    assert RegressionLoss("mae", n_targets=2)(pred, true).item() == pytest.approx((1.5 + 10.5 / 3) / 2)
    sw = torch.tensor([3.0, 1.0, 2.0])
    t0, t1 = (3 * 1 + 2) / 4, (3 * 0.5 + 2 + 2 * 8) / 6
    weighted = RegressionLoss("weighted_mae", n_targets=2, target_weights=[1.0, 3.0])
    assert weighted(pred, true, sw).item() == pytest.approx(0.25 * t0 + 0.75 * t1)
    # Far from zero the L1 gradient does not grow with the error, unlike MSE's.
    p = torch.tensor([[10.0]], requires_grad=True)
    RegressionLoss("mae")(p, torch.zeros(1, 1)).backward()
    assert p.grad.item() == pytest.approx(1.0)
