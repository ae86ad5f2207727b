import math

import numpy as np
import pytest
import torch

from astroreg.training import RegressionLoss, warmup_cosine


def test_mse_and_weighted_mse_by_hand():
    pred = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    true = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # per-target MSE: t0 = (1 + 4) / 2 = 2.5, t1 = (0 + 4) / 2 = 2
    assert RegressionLoss("mse", n_targets=2)(pred, true).item() == pytest.approx((2.5 + 2) / 2)
    w = RegressionLoss("weighted_mse", n_targets=2, target_weights=[3.0, 1.0])
    assert w(pred, true).item() == pytest.approx(0.75 * 2.5 + 0.25 * 2)


def test_huber_sample_weights_and_missing_targets():
    pred = torch.tensor([[0.0], [3.0], [5.0]])
    true = torch.tensor([[0.5], [0.0], [float("nan")]])
    loss = RegressionLoss("huber", n_targets=1, huber_delta=1.0)
    # Huber: 0.5 * 0.25 = 0.125 and 1 * (3 - 0.5) = 2.5; the NaN row is ignored.
    assert loss(pred, true).item() == pytest.approx((0.125 + 2.5) / 2)
    sw = torch.tensor([3.0, 1.0, 1.0])
    assert loss(pred, true, sw).item() == pytest.approx((3 * 0.125 + 2.5) / 4)


def test_bad_loss_settings():
    with pytest.raises(ValueError, match="unknown loss 'mae2'"):
        RegressionLoss("mae2")
    with pytest.raises(ValueError, match="2 positive numbers"):
        RegressionLoss("weighted_huber", n_targets=2, target_weights=[1.0])


def test_warmup_then_cosine_to_floor():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = warmup_cosine(opt, total_steps=100, warmup_fraction=0.1, min_lr_ratio=0.05)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) <= 1e-12)
    assert lrs[-1] == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))
