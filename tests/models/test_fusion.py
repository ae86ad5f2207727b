"""Fusion models: built from registered backbones by configuration, and they learn from two inputs.

The learning tests train on a two-input set made here: 1x16x16 images whose brightness
is one latent ``a``, three table columns that carry another latent ``b``, and the target
``y = a + 0.8 b``. ``a`` and ``b`` are independent, so the best prediction from either
input alone leaves at least ``0.64 / 1.64 = 39%`` of the variance of ``y``; a fusion model
must use both to get under the 25% asserted below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astroreg.models import create_model
from astroreg.models._fusion import EarlyFusion, LateFusion

KINDS = {"image": "images", "photometry": "tabular"}
SHAPES = {"image": (1, 16, 16), "photometry": (3,)}
N, N_TRAIN = 1200, 1000
MARGIN = 0.25  # test MSE must be below this fraction of the mean predictor's


def _two_input_set(seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor, tuple[np.ndarray, np.ndarray]]:
    """Inputs ``{"image": (N, 1, 16, 16), "photometry": (N, 3)}``, target ``(N, 1)`` and the latents ``a, b``."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=N), rng.normal(size=N)
    yy, xx = np.mgrid[:16, :16]
    blob = np.exp(-((xx - 7.5) ** 2 + (yy - 7.5) ** 2) / (2 * 3.0**2))
    images = a[:, None, None] * blob + 0.1 * rng.normal(size=(N, 16, 16))
    table = np.stack([b + 0.1 * rng.normal(size=N), 0.5 * b + 0.1 * rng.normal(size=N), rng.normal(size=N)], axis=1)
    y = a + 0.8 * b
    x = {"image": torch.tensor(images[:, None], dtype=torch.float32),
         "photometry": torch.tensor(table, dtype=torch.float32)}
    return x, torch.tensor(y[:, None], dtype=torch.float32), (a, b)


def _train_and_score(name: str, params: dict, *, steps: int = 300, batch: int = 64) -> tuple[float, float]:
    """Test MSE of the trained model and of the training mean."""
    x, y, _ = _two_input_set()
    train = {k: v[:N_TRAIN] for k, v in x.items()}
    test = {k: v[N_TRAIN:] for k, v in x.items()}
    torch.manual_seed(0)
    net = create_model(name, input_shapes=SHAPES, input_kinds=KINDS, n_outputs=1, **params)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(1)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, N_TRAIN, (batch,), generator=order)
        loss = torch.nn.functional.mse_loss(net({k: v[idx] for k, v in train.items()}), y[:N_TRAIN][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        mse = float(torch.mean((net(test) - y[N_TRAIN:]) ** 2))
    baseline = float(torch.mean((y[:N_TRAIN].mean() - y[N_TRAIN:]) ** 2))
    return mse, baseline


def test_neither_input_alone_suffices():
    _, y, (a, b) = _two_input_set()
    target = y[:, 0].double().numpy()
    for best_single in (a, 0.8 * b):  # E[y | one latent], the best any one input allows
        assert np.mean((target - best_single) ** 2) > 1.5 * MARGIN * np.var(target)


def test_fusion_early_learns_from_both_inputs():
    mse, baseline = _train_and_score("fusion_early", {
        "backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}},
                      "photometry": {"name": "mlp", "params": {"hidden": [32], "dropout": 0.0}}},
        "head": [32],
    })
    assert mse < MARGIN * baseline, f"fusion_early test MSE {mse:.3f} vs mean predictor {baseline:.3f}"


def test_fusion_late_learns_from_both_inputs():
    mse, baseline = _train_and_score("fusion_late", {
        "backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}},
                      "photometry": {"name": "mlp", "params": {"hidden": [32], "dropout": 0.0}}},
        "learn_weights": True,
    })
    assert mse < MARGIN * baseline, f"fusion_late test MSE {mse:.3f} vs mean predictor {baseline:.3f}"


def _build(name: str, n_outputs: int = 2, **params):
    return create_model(name, input_shapes=SHAPES, input_kinds=KINDS, n_outputs=n_outputs, **params)


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {k: torch.randn((n, *s), generator=g) for k, s in SHAPES.items()}


def test_early_fusion_concatenates_backbone_features():
    net = _build("fusion_early", backbones={"image": {"name": "paper_cnn"}}, head=[8])
    assert isinstance(net, EarlyFusion)
    assert list(net.backbones) == ["image", "photometry"]  # the recipe's order
    # image: paper_cnn's 64 dense features; photometry: the default mlp's 64
    assert [b.out_features for b in net.backbones.values()] == [64, 64]
    assert net.head[0].in_features == 128 and net.out_features == 2
    assert net.backbones["photometry"].inner.out_features == 64  # default tabular backbone: mlp
    headless = _build("fusion_early", 0, backbones={"image": {"name": "paper_cnn"}}, head=[8])
    assert headless.out_features == 8 and headless.eval()(_batch()).shape == (4, 8)


def test_late_fusion_averages_with_given_or_learned_weights():
    backbones = {"image": {"name": "paper_cnn"}, "photometry": {"name": "mlp", "params": {"hidden": [8]}}}
    net = _build("fusion_late", backbones=backbones, weights=[3, 1]).eval()
    assert isinstance(net, LateFusion)
    x = _batch()
    parts = [m(x) for m in net.nets.values()]
    torch.testing.assert_close(net(x), 0.75 * parts[0] + 0.25 * parts[1])
    learned = _build("fusion_late", backbones=backbones, learn_weights=True)
    torch.testing.assert_close(learned.fusion_weights(), torch.tensor([0.5, 0.5]))
    assert learned.logits is not None and learned.logits.requires_grad
    features = _build("fusion_late", 0, backbones=backbones).eval()
    assert features.out_features == 64 + 8 and features(x).shape == (4, 72)


@pytest.mark.parametrize("name", ["fusion_early", "fusion_late"])
@pytest.mark.parametrize("backbones, message", [
    ({}, r"no backbone for input 'image' \(kind 'images'\); add backbones\.image.*paper_cnn"),
    ({"image": {"name": "paper_cnn"}, "spectrum": {"name": "starnet_cnn"}},
     r"backbones are given for \['spectrum'\], which are not inputs of the recipe"),
    ({"image": {"name": "residual_mlp"}},
     r"backbone 'residual_mlp' for input 'image' takes spectra or tabular, but the input is of kind 'images'"),
    ({"image": {"name": "paper_cnn"}, "photometry": {"name": "paper_cnn"}},
     r"backbone 'paper_cnn' for input 'photometry' takes images, but the input is of kind 'tabular'"),
    ({"image": {"name": "paper_cnn", "params": {"widht": 3}}},
     r"backbone 'paper_cnn' for input 'image': model 'paper_cnn' has no parameter\(s\) \['widht'\]"),
    ({"image": {"name": "fusion_early"}}, r"backbone 'fusion_early' for input 'image' takes several inputs"),
    ({"image": "paper_cnn"}, r"backbone for input 'image' must be \{name: <model>, params"),
    ({"image": {"name": "no_such_net"}}, r"unknown model 'no_such_net'"),
])
def test_bad_backbones_name_the_input(name, backbones, message):
    with pytest.raises(ValueError, match=message):
        _build(name, backbones=backbones)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0, 0], [1.0, float("nan")]])
def test_bad_late_fusion_weights(weights):
    with pytest.raises(ValueError, match=r"weights must be 2 non-negative numbers.*\['image', 'photometry'\]"):
        _build("fusion_late", backbones={"image": {"name": "paper_cnn"}}, weights=weights)


def test_check_model_inputs_checks_fusion_backbones_without_building():
    from astroreg.models import check_model_inputs

    good = {"backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}}}, "head": [8]}
    check_model_inputs("fusion_early", KINDS, good)
    check_model_inputs("fusion_early", KINDS)  # without params only the kinds are checked
    with pytest.raises(ValueError, match=r"fusion_early: no backbone for input 'image'"):
        check_model_inputs("fusion_early", KINDS, {})
    with pytest.raises(ValueError, match=r"backbone 'paper_cnn' for input 'image': .*no parameter\(s\) \['widht'\]"):
        check_model_inputs("fusion_early", KINDS, {"backbones": {"image": {"name": "paper_cnn",
                                                                            "params": {"widht": 1}}}})
    with pytest.raises(ValueError, match=r"model 'fusion_late' has no parameter\(s\) \['head'\]"):
        check_model_inputs("fusion_late", KINDS, good)
    with pytest.raises(ValueError, match=r"fusion_late: weights must be 2 non-negative numbers"):
        check_model_inputs("fusion_late", KINDS, {"backbones": good["backbones"], "weights": [1.0]})


@pytest.mark.parametrize("bad", ["a.b", "training"])
def test_input_names_that_cannot_name_a_sub_network_are_refused(bad):
    with pytest.raises(ValueError, match=rf"input name '{bad}' cannot name a sub-network.*rename the input"):
        create_model("fusion_early", input_shapes={bad: (3,)}, input_kinds={bad: "tabular"}, n_outputs=1)
