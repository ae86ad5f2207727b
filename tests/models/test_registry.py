import pytest
import torch

from astroreg.models import create_model, get_model_entry, list_models, model_summary

SHAPES = {"images": (2, 24, 24), "spectra": (64,), "tabular": (7,)}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_forward_shape_finite_and_gradients(name):
    torch.manual_seed(0)
    kind = get_model_entry(name).input_kind
    shape = SHAPES.get(kind)
    if shape is None:
        pytest.fail(f"no test input shape for input kind {kind!r}; add one to SHAPES")
    net = create_model(name, input_shape=shape, n_outputs=3)
    x = torch.randn(5, *shape)
    y = net(x)
    assert y.shape == (5, 3)
    assert torch.isfinite(y).all()
    y.pow(2).sum().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


def test_unknown_model_and_parameter_are_named():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'.*paper_cnn"):
        create_model("resnet9000", input_shape=(1, 8, 8), n_outputs=1)
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['widht'\].*allowed"):
        create_model("paper_cnn", input_shape=(1, 143, 143), n_outputs=1, widht=3)


def test_paper_cnn_matches_the_paper():
    net = create_model("paper_cnn", input_shape=(1, 143, 143), n_outputs=1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [12, 24]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    # After two 2x2 poolings the map is (24, 35, 35), as the paper states.
    assert net.features(torch.zeros(1, 1, 143, 143)).shape == (1, 24, 35, 35)
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(24 * 35 * 35, 64), (64, 1)]
    n = sum(p.numel() for p in net.parameters())
    text = model_summary("paper_cnn", (1, 143, 143), 1)
    assert text.splitlines()[-1] == f"trainable parameters: {n}"
