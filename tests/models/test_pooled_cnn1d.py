"""Paper 004's 1-D CNN with max-pooling (``pooled_cnn1d``)."""

import pytest
import torch
from torch import nn

from astroreg.models import (
    count_flops,
    create_model,
    list_models,
    model_summary,
    optimize_for_inference,
    unwrap_single,
)
from astroreg.models._conv import Conv1d
from astroreg.models._pool import MaxPool1d
from astroreg.models._pooled_cnn1d import (
    PAPER_CONV,
    PAPER_DENSE,
    pooled_cnn1d_flops,
    resolve_layers,
)

# Paper 004, Table 2, with the output shapes Keras gives (channels last).
TABLE_2 = [
    ("Conv1D", (182, 256), 1536), ("MaxPooling1D", (91, 256), 0),
    ("Conv1D", (87, 256), 327936), ("MaxPooling1D", (43, 256), 0),
    ("Conv1D", (41, 128), 98432), ("MaxPooling1D", (20, 128), 0),
    ("Conv1D", (19, 64), 16448), ("MaxPooling1D", (9, 64), 0),
    ("Flatten", (576,), 0),
    ("Dense", (256,), 147712), ("Dense", (256,), 65792), ("Dense", (128,), 32896), ("Dense", (64,), 8256),
    ("Dense", (1,), 65),
]


def _inner(n=186, n_outputs=1, seed=0, **params):
    torch.manual_seed(seed)
    shape = n if isinstance(n, tuple) else (n,)
    return unwrap_single(create_model("pooled_cnn1d", input_shapes={"xp": shape}, n_outputs=n_outputs, **params))[1]


def test_registered_for_spectra_and_tables():
    assert "pooled_cnn1d" in list_models("spectra") and "pooled_cnn1d" in list_models("tabular")
    assert "pooled_cnn1d" not in list_models("images")


def test_papers_table_2_layer_by_layer_and_699073_parameters():
    net = _inner()
    assert net.layer_table() == TABLE_2
    assert sum(p.numel() for p in net.parameters()) == 699_073 == sum(r[2] for r in TABLE_2)
    assert model_summary("pooled_cnn1d", {"xp": (186,)}, 1).splitlines()[-1] == "trainable parameters: 699073"
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 256, 5), (256, 256, 5), (256, 128, 3), (128, 64, 2)]
    assert net.lengths == [182, 91, 87, 43, 41, 20, 19, 9]


def test_the_count_needs_valid_padding_and_pooling():
    """Only valid padding with pool 2 flattens 576 values (Table 2's first dense layer: 147,712)."""
    same = _inner(padding="same").layer_table()
    assert same[8] == ("Flatten", (64 * 11,), 0) and same[9][2] == 704 * 256 + 256
    unpooled = _inner(pool=1).layer_table()
    assert unpooled[4] == ("Flatten", (64 * 175,), 0)
    assert not any(isinstance(m, nn.MaxPool1d) for m in _inner(pool=0).modules())


def test_flops_formula_matches_torchs_counter():
    net = _inner().eval()
    assert count_flops(net, (1, 186)) == pooled_cnn1d_flops((186,)) == 66_673_792


def test_flat_tuning_form_builds_the_same_network_as_the_lists():
    flat = _inner(n_conv=4, conv_filters=[256, 256, 128, 64, 32], conv_kernels=[5, 5, 3, 2, 9],
                  n_dense=4, dense_units=[256, 256, 128, 64, 512])
    lists = _inner(conv=[[256, 5], [256, 5], [128, 3], [64, 2]], dense=[256, 256, 128, 64])
    assert str(flat) == str(lists)
    sd_flat, sd_lists = flat.state_dict(), lists.state_dict()
    assert sd_flat.keys() == sd_lists.keys()
    assert all(torch.equal(sd_flat[k], sd_lists[k]) for k in sd_flat)
    x = torch.randn(3, 186)
    assert torch.equal(flat(x), lists(x))


def test_flat_form_overrides_the_lists_column_by_column():
    assert resolve_layers(n_conv=2) == ([(256, 5), (256, 5)], list(PAPER_DENSE))
    assert resolve_layers(conv_kernels=3) == ([(256, 3), (256, 3), (128, 3), (64, 3)], list(PAPER_DENSE))
    assert resolve_layers(n_dense=0) == (list(PAPER_CONV), [])
    assert resolve_layers([[8, 3]], [16], conv_filters=[4, 6], n_conv=1) == ([(4, 3)], [16])
    with pytest.raises(ValueError, match="n_conv is 5 but conv_filters has only 4"):
        resolve_layers(n_conv=5)
    with pytest.raises(ValueError, match="different lengths.*give n_conv"):
        resolve_layers(conv_filters=[32, 64])
    with pytest.raises(ValueError, match="conv must be a list of"):
        resolve_layers(conv=[256, 5])


@pytest.mark.parametrize("n_outputs", [1, 3, 0])
def test_outputs_headless_finite_and_gradients(n_outputs):
    net = create_model("pooled_cnn1d", input_shapes={"xp": (186,)}, n_outputs=n_outputs,
                       conv=[[16, 5], [16, 3]], dense=[32, 8], dropout=0.1)
    y = net({"xp": torch.randn(4, 186)})
    assert y.shape == (4, n_outputs or 8) and net.out_features == (n_outputs or 8)
    assert torch.isfinite(y).all()
    y.pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if n_outputs == 0:
        assert not any(k.startswith("inner.output") for k in net.state_dict())


def test_channels_input_and_activations():
    net = _inner(n=(2, 40), conv=[[4, 3]], dense=[8], conv_activation="tanh", dense_activation="leaky_relu")
    assert net(torch.randn(5, 2, 40)).shape == (5, 1)
    assert [type(m) for m in net.features] == [Conv1d, nn.Tanh, MaxPool1d, nn.Flatten]
    assert isinstance(net.dense[1], nn.LeakyReLU) and net.dense[1].negative_slope == 0.2
    elu = _inner(n=40, conv=[[4, 3]], dense=[8], activation="elu")
    assert isinstance(elu.features[1], nn.ELU) and isinstance(elu.dense[1], nn.ELU)


def test_keras_init_is_glorot_uniform_with_zero_biases():
    net = _inner()
    conv = net.features[3]
    fan_in, fan_out = 256 * 5, 256 * 5
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert all(float(m.bias.detach().abs().max()) == 0 for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Linear)))
    assert any(float(m.bias.detach().abs().max()) > 0 for m in _inner(init="torch").modules() if isinstance(m, nn.Linear))


def test_maps_that_run_out_name_the_layer_and_the_fix():
    with pytest.raises(ValueError, match=r"convolution 2 \(kernel 7.*length 5.*n_conv.*conv_kernels"):
        _inner(n=40, conv=[[4, 7], [4, 7], [4, 7]])
    with pytest.raises(ValueError, match=r"max-pooling after convolution 0 \(size 2\).*length 1"):
        _inner(n=3, conv=[[4, 3]])
    assert _inner(n=7, conv=[[4, 7]], pool=0)(torch.zeros(2, 7)).shape == (2, 1)


@pytest.mark.parametrize("params, match", [
    ({"padding": "causal"}, "padding must be 'valid'"),
    ({"activation": "swish"}, "activation.*'swish' is not known"),
    ({"pool": -1}, "pool must be a non-negative integer"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"init": "he"}, "init must be"),
    ({"conv_filters": [0, 4]}, "conv_filters must be a list of positive integers"),
])
def test_bad_parameters_are_refused_with_the_key(params, match):
    with pytest.raises(ValueError, match=match):
        _inner(n=64, **params)


def test_prediction_is_chunked_and_equals_eager():
    net = _inner(n=64, conv=[[8, 5], [8, 3]], dense=[16]).eval()
    assert net.inference_chunk == 32
    x = torch.randn(70, 64)
    fast = optimize_for_inference(net, x)
    assert fast.batch_size == net.inference_chunk and fast.backend == "eager"
    with torch.inference_mode():
        want = net(x)
    assert torch.allclose(fast(x), want, atol=1e-6)
