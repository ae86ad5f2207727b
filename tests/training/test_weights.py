"""Engine sample weights (inverse frequency, LDS), Keras-style L2, schedules with early stopping."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_tabular_dataset
from torch import nn

from astroreg.config import recipe_from_dict
from astroreg.models import load_model
from astroreg.pipeline import train_recipe
from astroreg.training import (
    RegressionModule,
    label_weights,
    lds_kernel,
    regularized_parameters,
)
from astroreg.training._head import output_layer

# Hand-made labels: 10 bins of width 1 over [0, 10]; counts 6, 3, 0, 1, 0, 0, 0, 0, 0, 2.
LABELS = np.array([0.1, 0.2, 0.5, 0.5, 0.7, 0.9, 1.5, 1.5, 1.9, 3.2, 9.5, 10.0])
COUNTS = np.array([6, 3, 0, 1, 0, 0, 0, 0, 0, 2], dtype=float)
BIN_OF_LABEL = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 3, 9, 9])


def test_inverse_frequency_is_one_over_the_bin_count_at_mean_one():
    w = label_weights(LABELS, kind="inverse_frequency", bins=10)
    raw = 1.0 / COUNTS[BIN_OF_LABEL]
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)
    # The lone label of bin 3 weighs 6 times one of the 6 in bin 0.
    assert w[9] / w[0] == pytest.approx(6.0)


@pytest.mark.parametrize("kernel, window", [
    ("gaussian", np.exp(-0.5 * (np.arange(-2, 3) / 2.0) ** 2)),
    ("triangular", np.array([1, 2, 3, 2, 1]) / 3.0),
    ("laplace", np.exp(-np.abs(np.arange(-2, 3)) / 2.0)),
])
def test_lds_weights_match_a_direct_computation(kernel, window):
    # Yang et al. 2021: smoothed density = counts convolved with the kernel (zero beyond the ends).
    np.testing.assert_allclose(lds_kernel(kernel, 5, 2.0), window)
    padded = np.r_[np.zeros(2), COUNTS, np.zeros(2)]
    smoothed = np.array([np.dot(padded[b:b + 5], window[::-1]) for b in range(10)])
    raw = 1.0 / smoothed[BIN_OF_LABEL]
    w = label_weights(LABELS, kind="lds", bins=10, kernel=kernel, kernel_size=5, sigma=2.0)
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-12)
    # Smoothing lends the empty neighbours of bin 3 density: its label weighs less than without LDS.
    plain = label_weights(LABELS, kind="inverse_frequency", bins=10)
    assert w[9] / w[0] < plain[9] / plain[0]


def test_power_clip_and_missing_labels():
    y = np.r_[LABELS, np.nan]
    w = label_weights(y, kind="inverse_frequency", bins=10, power=0.5, clip=(0.5, 1.5))
    raw = COUNTS[BIN_OF_LABEL] ** -0.5
    np.testing.assert_allclose(w[:-1], np.clip(raw / raw.mean(), 0.5, 1.5))
    assert w[-1] == 1.0
    assert np.all(label_weights(LABELS, kind="none") == 1.0)
    with pytest.raises(ValueError, match="every training label is missing"):
        label_weights([np.nan, np.nan], kind="lds")
    with pytest.raises(ValueError, match="odd"):
        lds_kernel("gaussian", 4)


def test_weighting_fitted_on_training_labels_applies_to_other_labels():
    # Bins, density and scale come from LABELS: a label in bin 3 weighs 6x one in bin 0, as in training.
    w_train = label_weights(LABELS, kind="inverse_frequency", bins=10)
    other = np.array([0.3, 3.5, 1.2, 20.0, -4.0, np.nan, 6.5])
    w = label_weights(LABELS, kind="inverse_frequency", bins=10, apply_to=other)
    assert w.shape == (7,)
    np.testing.assert_allclose(w[:3], [w_train[0], w_train[9], w_train[6]])
    # Beyond the training range: the end bins' weights; in an empty bin: the rarest training weight; NaN: 1.
    assert w[3] == pytest.approx(w_train[10]) and w[4] == pytest.approx(w_train[0])
    assert w[6] == pytest.approx(w_train.max())
    assert w[5] == 1.0
    # Applied to the training labels themselves, it is the training weighting (clip included).
    for kind in ("inverse_frequency", "lds"):
        np.testing.assert_allclose(label_weights(LABELS, kind=kind, bins=10, power=0.5, clip=(0.5, 1.5), apply_to=LABELS),
                                   label_weights(LABELS, kind=kind, bins=10, power=0.5, clip=(0.5, 1.5)))


def test_l2_term_is_l2_times_the_sum_of_squared_kernels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    module = RegressionModule(net, n_targets=1, l2=0.01)
    expected = 0.01 * (net[0].weight.pow(2).sum() + net[2].weight.pow(2).sum())
    assert module.l2_penalty().item() == pytest.approx(expected.item(), rel=1e-6)
    # Biases are not kernels.
    assert {id(p) for p in regularized_parameters(net)} == {id(net[0].weight), id(net[2].weight)}
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    module.log = lambda *a, **k: None
    total = module.training_step((x, y, None), 0)
    data = module.loss_fn(net(x), y, None)
    assert total.item() == pytest.approx((data + expected).item(), rel=1e-6)
    assert RegressionModule(net, n_targets=1).l2_penalty().item() == 0.0


def test_l2_uses_the_networks_own_list():
    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.b(self.a(x))

        def regularized_parameters(self):
            return [self.a.weight]

    net = Listed()
    module = RegressionModule(net, n_targets=1, l2=0.5)
    assert module.l2_penalty().item() == pytest.approx(0.5 * net.a.weight.pow(2).sum().item(), rel=1e-6)


def _minimal(**training):
    return {"name": "r", "dataset": {"path": "x.h5"}, "inputs": {"modality": "tabular", "columns": ["x0"]},
            "targets": [{"name": "y"}], "model": {"name": "mlp"}, "training": training}


def test_warmup_cosine_with_early_stopping_is_refused():
    with pytest.raises(ValueError, match="warmup_cosine cannot be combined.*use scheduler \\{name: plateau\\}"):
        recipe_from_dict(_minimal(scheduler={"name": "warmup_cosine"}, early_stopping={"patience": 5}))
    # The combinations that work are accepted.
    recipe_from_dict(_minimal(scheduler={"name": "plateau"}, early_stopping={"patience": 5}))
    recipe_from_dict(_minimal(scheduler={"name": "warmup_cosine"}))
    with pytest.raises(ValueError, match="sample_weights.target 'z' is not a target"):
        recipe_from_dict(_minimal(sample_weights={"kind": "lds", "target": "z"}))


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    """A label with a long low tail, seen through a noisy feature: the rare low end is pulled to the bulk."""
    rng = np.random.default_rng(0)
    n = 1500
    y = -rng.exponential(1.0, n)
    x0 = y + rng.normal(0, 0.7, n)
    return make_tabular_dataset(tmp_path_factory.mktemp("imb") / "imb.h5", {"x0": x0, "x1": rng.normal(size=n)},
                                {"y": y})


def _run(path, root, sample_weights):
    recipe = recipe_from_dict({
        "name": "imb", "dataset": {"path": str(path)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1"]}, "targets": [{"name": "y"}],
        "model": {"name": "mlp", "params": {"hidden": [32], "dropout": 0.0}},
        "training": {"epochs": 8, "batch_size": 64, "optimizer": {"lr": 3e-3}, "sample_weights": sample_weights},
        "evaluation": {"regimes": {"bins": 5, "low_quantile": 0.2}},
    })
    return train_recipe(recipe, runs_root=root, progress=False)


def test_weights_lower_the_low_end_mae_through_the_engine(imbalanced, tmp_path):
    plain = _run(imbalanced, tmp_path, {"kind": "none"})
    lds = _run(imbalanced, tmp_path, {"kind": "lds", "bins": 20})
    low = [json.loads((r / "metrics.json").read_text())["low_end"]["mlp"]["y"] for r in (plain, lds)]
    # Measured 0.573 -> 0.490 (seeds 1-3 of the data: ratios 0.80, 0.83, 0.87).
    assert low[1]["mae"] < 0.9 * low[0]["mae"]
    assert abs(low[1]["bias"]) < abs(low[0]["bias"])
    assert low[0]["n"] == low[1]["n"] == 60
    info = json.loads((lds / "sample_weights.json").read_text())
    assert info["kind"] == "lds" and info["mean"] == pytest.approx(1.0) and info["max"] > 3 * info["median"]
    assert not (plain / "sample_weights.json").exists()
    assert "Training sample weights (lds in 20 bins of y" in (lds / "report.md").read_text()
    assert pd.read_csv(lds / "history.csv")["val_loss"].notna().all()


def test_weight_validation_weights_the_validation_loss_the_same_way(imbalanced, tmp_path):
    settings = {"kind": "lds", "bins": 20}
    unweighted_val = _run(imbalanced, tmp_path / "a", settings)
    weighted_val = _run(imbalanced, tmp_path / "b", settings | {"weight_validation": True})
    a, b = (pd.read_csv(r / "history.csv") for r in (unweighted_val, weighted_val))
    # Same seed, same training weights: the same fit, epoch by epoch; only the validation loss differs.
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    assert not np.allclose(a["val_loss"], b["val_loss"], rtol=1e-3)
    # The weighted validation loss counts the badly fitted low tail more: it is the larger one.
    assert (b["val_loss"] > a["val_loss"]).all()
    assert json.loads((weighted_val / "sample_weights.json").read_text())["weight_validation"] is True
    assert "the validation loss is weighted the same way" in (weighted_val / "report.md").read_text()


def test_head_stage_trains_unweighted_then_refits_only_the_output_layer(imbalanced, tmp_path):
    plain = _run(imbalanced, tmp_path / "a", {"kind": "none"})
    head = _run(imbalanced, tmp_path / "b", {"kind": "lds", "bins": 20, "power": 0.5, "clip": [0.2, 5.0],
                                             "stage": "head"})
    # Same seed and no weights while training: the same fit, epoch by epoch.
    a, b = (pd.read_csv(r / "history.csv") for r in (plain, head))
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-5)
    # Only the output layer moved.
    sa, sb = (load_model(r / "model.pt").state_dict() for r in (plain, head))
    changed = sorted(k for k in sa if not torch.equal(sa[k], sb[k]))
    assert changed and all(k.rsplit(".", 2)[-2] == changed[0].rsplit(".", 2)[-2] for k in changed)
    assert {k.rsplit(".", 1)[-1] for k in changed} == {"weight", "bias"}
    info = json.loads((head / "sample_weights.json").read_text())
    refit = info["head_refit"]
    assert info["stage"] == "head" and refit["parameters"] == 33 and 0 < refit["best_step"] <= refit["steps"]
    # The refit lowers the weighted loss it minimises, on the training objects and on the
    # validation objects it stops on.
    assert refit["train_loss_after"] < refit["train_loss_before"]
    assert refit["weighted_val_loss_after"] < refit["weighted_val_loss_before"]
    low = [json.loads((r / "metrics.json").read_text())["low_end"]["mlp"]["y"] for r in (plain, head)]
    # Measured 0.573 -> 0.529, bias 0.36 -> 0.18 (the joint weighting of the test above: 0.490).
    assert low[1]["mae"] < 0.95 * low[0]["mae"]
    assert abs(low[1]["bias"]) < abs(low[0]["bias"])
    assert "then its output layer `" in (head / "report.md").read_text()


def test_head_stage_refuses_weight_validation_and_a_network_without_a_linear_output():
    with pytest.raises(ValueError, match="weight_validation applies to stage: joint"):
        recipe_from_dict(_minimal(sample_weights={"kind": "lds", "stage": "head", "weight_validation": True}))

    class Softplus(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.out = torch.nn.Linear(3, 1)

        def forward(self, x):
            return torch.nn.functional.softplus(self.out(x))

    with pytest.raises(ValueError, match="not that of one linear layer with 1 outputs.*use stage: joint"):
        output_layer(Softplus(), 1, torch.zeros(2, 3))
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    assert output_layer(net, 1, torch.zeros(2, 3)) == ("2", net[2])
