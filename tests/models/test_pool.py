"""astroreg's MaxPool1d: the values and gradients of torch.nn.MaxPool1d, by another route."""

import pytest
import torch
from torch import nn

from astroreg.models._conv import Conv1d
from astroreg.models._pool import MaxPool1d
from astroreg.models._pooled_cnn1d import PooledCNN1d


def _with_ties(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    x[..., 2] = x[..., 3]  # a tied window
    x[..., 6:9] = 0.5  # ties across window boundaries
    return torch.relu(x)  # ReLU's zeros: many more ties


@pytest.mark.parametrize(("k", "length"), [(2, 182), (2, 87), (2, 7), (3, 50), (4, 13)])
def test_values_and_gradients_equal_torch(k, length):
    x = _with_ties((4, 8, length), seed=k + length)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn(4, 8, length // k, generator=torch.Generator().manual_seed(1))
    ours, theirs = MaxPool1d(k)(a), nn.MaxPool1d(k)(b)
    ours.backward(grad)
    theirs.backward(grad)
    assert torch.equal(ours, theirs)
    assert torch.equal(a.grad, b.grad)
    if length % k:
        assert torch.all(a.grad[..., -(length % k):] == 0)  # the samples after the last window


def test_gradcheck_double():
    x = torch.randn(2, 3, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: MaxPool1d(2)(t), (x,))


def test_other_settings_are_torchs():
    x = _with_ties((2, 3, 20)).requires_grad_()
    for kwargs in ({"stride": 1}, {"padding": 1}, {"ceil_mode": True}, {"dilation": 2}):
        ours, theirs = MaxPool1d(2, **kwargs)(x), nn.MaxPool1d(2, **kwargs)(x)
        assert torch.equal(ours, theirs), kwargs
        assert ours.grad_fn.name() == theirs.grad_fn.name(), kwargs  # PyTorch's own path
    fast = MaxPool1d(2)(x)
    assert "WindowMax" in fast.grad_fn.name()
    with torch.no_grad():
        assert torch.equal(MaxPool1d(2)(x), nn.MaxPool1d(2)(x))


def test_relu_network_pools_first_and_matches_activation_first():
    torch.manual_seed(0)
    kw = dict(input_shape=(60,), n_outputs=1, conv=[(8, 5), (4, 3)], pool=2, padding="valid", dense=[16],
              dense_activation="relu", dropout=0.0, init="keras")
    relu = PooledCNN1d(conv_activation="relu", **kw)
    assert [type(m) for m in relu.features[:3]] == [Conv1d, MaxPool1d, nn.ReLU]
    # The same weights with the activation first (as Keras orders it) give the same values and gradients.
    ref = PooledCNN1d(conv_activation="relu", **kw)
    ref.load_state_dict(relu.state_dict())
    feats = list(ref.features)
    for i in range(len(feats)):
        if isinstance(feats[i], MaxPool1d):
            feats[i], feats[i + 1] = feats[i + 1], nn.MaxPool1d(2)
    ref.features = nn.Sequential(*feats)
    x = torch.randn(6, 60)
    out_a, out_b = relu(x), ref(x)
    assert torch.allclose(out_a, out_b, atol=0, rtol=0)
    out_a.sum().backward()
    out_b.sum().backward()
    for (name, p), q in zip(relu.named_parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad), name
